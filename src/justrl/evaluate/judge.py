"""The model judge of the evaluation grader: CompassVerifier's A/B/C prompt, as the JustRL release used it.

The release sends every answer its rule grader rejects to ``opencompass/CompassVerifier-3B``
(greedy, 2,048 new tokens, the prompt below wrapped in the judge's chat template) and counts the
answer correct when the judge's whole reply, stripped, is ``"A"``. It passes the full response and,
because its JSONL records carry no ``question`` field, an empty question; ``include_question=True``
sends the problem text instead (a deviation from the release, off by default).

The judge runs through any generation backend with ``generate(prompts, params, seeds=None)`` that
returns strings or objects with a ``.text`` (``justrl.generate.hf.HFGenerator``, the vLLM backend).

The answers it gets are often the longest ones (truncated at the full budget), so it never sends
them all at once: prompts go longest first, in batches whose padded size (rows x (longest prompt +
new tokens)) stays within a token budget, and each asks for at most the room the judge's context
leaves (vLLM stops there too). Its engine is built only when there is something to judge, with a
``max_model_len`` that fits the longest prompt, and :meth:`CompassVerifierJudge.close` ends it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from justrl import logs

log = logs.get(__name__)

# The CompassVerifier prompt exactly as the JustRL release formats it (evals/grade.py), with
# ``{question}``, ``{gold_answer}`` and ``{llm_response}`` to fill.
CV_PROMPT = """
Please as a grading expert, judge whether the final answers given by the candidates below are consistent with the standard answers, that is, whether the candidates answered correctly. 
Here are some evaluation criteria:
1. Please refer to the given standard answer. You don't need to re-generate the answer to the question because the standard answer has been given. You only need to judge whether the candidate's answer is consistent with the standard answer according to the form of the question. THE STANDARD ANSWER IS ALWAYS CORRECT AND THE QUESTION IS PERFECTLY VALID. NEVER QUESTION THEM.
2. ONLY compare the FINAL ANSWER - COMPLETELY IGNORE any potential errors in the REASONING PROCESSES.
3. Some answers may be expressed in different ways, such as some answers may be a mathematical expression, some answers may be a textual description, as long as the meaning expressed is the same. Before making a judgment, please understand the question and the standard answer first, and then judge whether the candidate's answer is correct.
4. Some answers may consist of multiple items, such as multiple-choice questions, multiple-select questions, fill-in-the-blank questions, etc. Regardless of the question type, the final answer will be considered correct as long as it matches the standard answer, regardless of whether the reasoning process is correct. For multiple-select questions and multi-blank fill-in-the-blank questions, all corresponding options or blanks must be answered correctly and match the standard answer exactly to be deemed correct.
5. If the prediction is given with \\boxed{{}}, please ignore the \\boxed{{}} and only judge whether the candidate's answer is consistent with the standard answer.
6. If the candidate's answer is invalid (e.g., incomplete (cut off mid-response), lots of unnormal repetitive content, or irrelevant to the question, saying it can't answer the question because some irresistible factors, like ethical issues, no enough information, etc.), select option C (INVALID).Please judge whether the following answers are consistent with the standard answer based on the above criteria. Grade the predicted answer of this new question as one of:
A: CORRECT 
B: INCORRECT
C: INVALID
Just return the letters "A", "B", or "C", with no text around it.
Here is your task. Simply reply with either CORRECT, INCORRECT, or INVALID. Don't apologize or correct yourself if there was a mistake; we are just trying to grade the answer.
<Original Question Begin>:
{question}
<Original Question End>
<Standard Answer Begin>:
{gold_answer}
<Standard Answer End>
<Candidate's Answer Begin>: 
{llm_response}
<Candidate's Answer End>
Judging the correctness of the candidate's answer:
"""  # noqa: W291 -- the trailing spaces are part of the release's prompt

DEFAULT_JUDGE_MODEL = "opencompass/CompassVerifier-3B"
JUDGE_MAX_NEW_TOKENS = 2048
HF_BATCH_TOKENS = 65_536
"""hf judge: padded tokens per batch (two 32k-token prompts, or twenty 1k-token ones with their
2,048 new tokens); the transformers backend keeps every row's cache and mask at the padded size."""
VLLM_BATCH_TOKENS = 1_048_576
"""vllm judge: tokens per ``generate`` call; vLLM pages its cache and schedules within the call."""

_LETTER = re.compile(r"^\W*(?:\\boxed\{)?\s*([ABC])\b")
_WORDS = {"CORRECT": "A", "INCORRECT": "B", "INVALID": "C"}


class TextGenerator(Protocol):
    """A generation backend: ``justrl.generate.hf.Generator`` or anything shaped like it."""

    def generate(
        self, prompts: Sequence[str], params: Any, seeds: Sequence[int] | None = None
    ) -> Sequence[Any]: ...


def judge_prompt(question: str, gold_answer: str, response: str) -> str:
    """The release's judge prompt for one answer (before the chat template)."""
    return CV_PROMPT.format(question=question, gold_answer=gold_answer, llm_response=response)


def parse_judgement(reply: str) -> str | None:
    """The letter a judge reply gives (``"A"``, ``"B"``, ``"C"``), or ``None`` when it gives none.

    Reads bare letters, ``\\boxed{A}``, ``A: CORRECT`` and the words CORRECT/INCORRECT/INVALID.
    """
    text = reply.strip()
    m = _LETTER.match(text)
    if m is not None:
        return m.group(1)
    word = text.strip(" .*:\n").upper()
    return _WORDS.get(word)


def _reply_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    text = getattr(output, "text", None)
    if isinstance(text, str):
        return text
    raise TypeError(
        f"the judge backend returned {type(output).__name__}, expected str or an object with .text"
    )




@dataclass(frozen=True)
class JudgeBatch:
    """Prompts (by index) sent in one generate call, and the new tokens each may take."""

    indices: list[int]
    max_new_tokens: int


def plan_batches(
    lengths: Sequence[int], budget: int, max_new_tokens: int, context: int | None = None
) -> tuple[list[JudgeBatch], list[int]]:
    """Batches of prompt indices, longest prompts first, and the prompts that do not fit at all.

    A prompt may take ``min(max_new_tokens, context - its length)`` new tokens (as vLLM, which stops
    at the context); a batch holds prompts with the same allowance and its padded size, rows x
    (longest prompt + allowance), stays within ``budget`` (a batch has at least one prompt).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[JudgeBatch] = []
    too_long: list[int] = []
    for i in order:
        room = max_new_tokens if context is None else min(max_new_tokens, context - lengths[i])
        if room < 1:
            too_long.append(i)
            continue
        last = batches[-1] if batches else None
        if (last is not None and last.max_new_tokens == room
                and (len(last.indices) + 1) * (lengths[last.indices[0]] + room) <= budget):
            last.indices.append(i)
        else:
            batches.append(JudgeBatch([i], room))
    return batches, too_long


@dataclass
class CompassVerifierJudge:
    """A model judge with the CompassVerifier prompt, run through a generation backend.

    ``chat_template`` turns the prompt into the model's input string (for a Hugging Face
    tokenizer: :func:`chat_template_of`). ``release_exact`` keeps the release's decision rule
    (the reply, stripped, must be exactly ``"A"``); otherwise :func:`parse_judgement` reads it.
    ``count_tokens`` measures a templated prompt in the judge's tokens (default: characters);
    ``context`` is the judge's context window (prompt + reply), ``batch_tokens`` the budget of one
    generate call (see :func:`plan_batches`). ``generator`` may be None and ``build`` make it on
    first use, given the longest prompt + reply it has to hold (its ``max_model_len``).
    """

    generator: TextGenerator | None
    chat_template: Callable[[str], str] | None = None
    max_new_tokens: int = JUDGE_MAX_NEW_TOKENS
    include_question: bool = False
    release_exact: bool = True
    name: str = DEFAULT_JUDGE_MODEL
    count_tokens: Callable[[str], int] | None = None
    context: int | None = None
    batch_tokens: int = HF_BATCH_TOKENS
    build: Callable[[int], TextGenerator] | None = field(default=None, repr=False)
    calls: int = 0
    """Answers judged so far."""
    too_long: int = 0
    """Answers whose judge prompt did not fit the judge's context (graded not correct)."""

    def prompts(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[str]:
        out = []
        for question, response, truth in zip(questions, responses, ground_truths):
            text = judge_prompt(question if self.include_question else "", truth, response)
            out.append(self.chat_template(text) if self.chat_template is not None else text)
        return out

    def replies(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[str]:
        """The judge's raw replies, greedy-decoded ("" for a prompt longer than its context)."""
        prompts = self.prompts(questions, responses, ground_truths)
        count = self.count_tokens or len
        lengths = [count(p) for p in prompts]
        batches, too_long = plan_batches(lengths, self.batch_tokens, self.max_new_tokens, self.context)
        out = [""] * len(prompts)
        if too_long:
            self.too_long += len(too_long)
            log.warning("judge: %d answers do not fit its context of %s tokens; graded not correct",
                        len(too_long), self.context)
        if batches:
            generator = self._generator(max(lengths[b.indices[0]] + b.max_new_tokens for b in batches))
            from justrl.generate.hf import SamplingParams  # imports torch: only when a judge runs

            for batch in batches:
                params = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=batch.max_new_tokens, seed=0)
                outputs = generator.generate([prompts[i] for i in batch.indices], params)
                for i, output in zip(batch.indices, outputs):
                    out[i] = _reply_text(output)
        self.calls += len(prompts)
        return out

    def _generator(self, max_model_len: int) -> TextGenerator:
        if self.generator is None:
            if self.build is None:
                raise ValueError("CompassVerifierJudge needs a generator or a build function")
            self.generator = self.build(max_model_len)
        return self.generator

    def decide(self, reply: str) -> bool:
        if self.release_exact:
            return reply.strip() == "A"
        return parse_judgement(reply) == "A"

    def judge(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[bool]:
        """True for each answer the judge grades correct (A)."""
        return [self.decide(r) for r in self.replies(questions, responses, ground_truths)]

    def close(self) -> None:
        """End the judge's engine (it frees its GPU memory); a later call builds it again."""
        if self.generator is not None and self.build is not None:
            from justrl.generate.vllm import release

            release(self.generator)
            self.generator = None


def chat_template_of(tokenizer: Any) -> Callable[[str], str]:
    """One user turn through ``tokenizer``'s chat template, with the generation prompt."""

    def apply(text: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )

    return apply


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Length of a chat-templated prompt in ``tokenizer``'s tokens (the template added the specials)."""
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


@dataclass(frozen=True)
class JudgeEngine:
    """How to build the judge's backend, apart from the policy's: its own GPU share and
    tensor-parallel size (the release ran the judge on one GPU), sized to its longest prompt."""

    backend: str = "hf"
    """``hf`` (transformers) or ``vllm``."""
    gpu_memory_utilization: float = 0.9
    """vllm: the judge engine's GPU share (the policy's engine has ended when it starts)."""
    tensor_parallel_size: int = 1
    """vllm: GPUs for the judge engine (the release: 1)."""
    max_model_len: int | None = None
    """vllm: the judge engine's context; default: the longest prompt + reply, within the model's."""
    batch_tokens: int | None = None
    """Tokens per generate call; default :data:`HF_BATCH_TOKENS` / :data:`VLLM_BATCH_TOKENS`."""
    enforce_eager: bool = False
    """vllm: no CUDA graphs."""
    device: str | None = None
    """hf: torch device (default: cuda if available, else cpu)."""
    dtype: str | None = None
    """Weights' dtype (default: the backend's choice)."""

    def build(self, model: str, context: int | None) -> Callable[[int], TextGenerator]:
        def make(needed: int) -> TextGenerator:
            if self.backend == "vllm":
                from justrl.generate.vllm import VLLMGenerator

                length = self.max_model_len or (min(needed, context) if context else needed)
                return VLLMGenerator(
                    model, gpu_memory_utilization=self.gpu_memory_utilization,
                    tensor_parallel_size=self.tensor_parallel_size, enforce_eager=self.enforce_eager,
                    max_model_len=length, **({"dtype": self.dtype} if self.dtype else {}),
                )
            from justrl.generate.factory import load_hf_generator

            # The judge's token budget sizes its batches; the generator must not cut them again.
            return load_hf_generator(model, device=self.device, dtype=self.dtype, batch_size=1 << 20)

        return make


def load_judge(
    model: str, *, include_question: bool = False, engine: JudgeEngine | None = None, **hf_options: Any
) -> CompassVerifierJudge:
    """A :class:`CompassVerifierJudge` for a local folder or hub id; its model loads on first use.

    ``engine`` says which backend and settings (default: transformers, ``hf_options`` as
    ``device``/``dtype``). The tokenizer loads now: it templates and measures the prompts.
    """
    from transformers import AutoTokenizer

    from justrl.errors import ModelLoadError
    from justrl.generate.context_window import model_context
    from justrl.generate.model_files import check_source

    check_source(model, "--judge-model")
    engine = engine or JudgeEngine(**hf_options)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # OSError for a missing path/hub id, others for broken folders
        raise ModelLoadError(f"cannot load the judge's tokenizer {model!r}: {exc}") from exc
    context = model_context(model, engine.max_model_len)
    budget = engine.batch_tokens or (VLLM_BATCH_TOKENS if engine.backend == "vllm" else HF_BATCH_TOKENS)
    return CompassVerifierJudge(
        None, chat_template_of(tokenizer), include_question=include_question, name=model,
        count_tokens=token_counter(tokenizer), context=context, batch_tokens=budget,
        build=engine.build(model, context),
    )
