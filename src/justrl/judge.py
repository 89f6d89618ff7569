"""The model judge of the evaluation grader: CompassVerifier's A/B/C prompt, as the JustRL release used it.

The release sends every answer its rule grader rejects to ``opencompass/CompassVerifier-3B``
(greedy, 2,048 new tokens, the prompt below wrapped in the judge's chat template) and counts the
answer correct when the judge's whole reply, stripped, is ``"A"``. It passes the full response and,
because its JSONL records carry no ``question`` field, an empty question; ``include_question=True``
sends the problem text instead (a deviation from the release, off by default).

The judge runs through any generation backend with ``generate(prompts, params, seeds=None)`` that
returns strings or objects with a ``.text`` (``justrl.generation.HFGenerator``, the vLLM backend).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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

_LETTER = re.compile(r"^\W*(?:\\boxed\{)?\s*([ABC])\b")
_WORDS = {"CORRECT": "A", "INCORRECT": "B", "INVALID": "C"}


class TextGenerator(Protocol):
    """A generation backend: ``justrl.generation.Generator`` or anything shaped like it."""

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


@dataclass
class CompassVerifierJudge:
    """A model judge with the CompassVerifier prompt, run through a generation backend.

    ``chat_template`` turns the prompt into the model's input string (for a Hugging Face
    tokenizer: :func:`chat_template_of`). ``release_exact`` keeps the release's decision rule
    (the reply, stripped, must be exactly ``"A"``); otherwise :func:`parse_judgement` reads it.
    """

    generator: TextGenerator
    chat_template: Callable[[str], str] | None = None
    max_new_tokens: int = JUDGE_MAX_NEW_TOKENS
    include_question: bool = False
    release_exact: bool = True
    name: str = DEFAULT_JUDGE_MODEL
    calls: int = 0  # answers judged so far

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
        """The judge's raw replies, greedy-decoded."""
        if not responses:
            return []
        from justrl.generation import SamplingParams  # imports torch: only when a judge runs

        params = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=self.max_new_tokens, seed=0)
        outputs = self.generator.generate(self.prompts(questions, responses, ground_truths), params)
        self.calls += len(responses)
        return [_reply_text(o) for o in outputs]

    def decide(self, reply: str) -> bool:
        if self.release_exact:
            return reply.strip() == "A"
        return parse_judgement(reply) == "A"

    def judge(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[bool]:
        """True for each answer the judge grades correct (A)."""
        return [self.decide(r) for r in self.replies(questions, responses, ground_truths)]


def chat_template_of(tokenizer: Any) -> Callable[[str], str]:
    """One user turn through ``tokenizer``'s chat template, with the generation prompt."""

    def apply(text: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )

    return apply


def load_judge(model: str, *, include_question: bool = False, **backend_options: Any) -> CompassVerifierJudge:
    """A :class:`CompassVerifierJudge` on the transformers backend for a local folder or hub id."""
    from justrl.generation import load_hf_generator
    from justrl.model_files import check_source

    check_source(model, "--judge-model")
    generator = load_hf_generator(model, **backend_options)
    return CompassVerifierJudge(
        generator, chat_template_of(generator.tokenizer), include_question=include_question, name=model
    )
