"""The vLLM generation backend: one engine per process (per Ray worker), same protocol as ``hf``.

vLLM is optional (``pip install 'justrl[vllm]'`` on a GPU machine); importing this module never
needs it, building a :class:`VLLMGenerator` without it raises :class:`VLLMUnavailable` saying
what to install.

The boundary with vLLM is two pure functions, tested on CPU against a stand-in:

- :func:`build_sampling_params`: one ``vllm.SamplingParams`` per prompt, ``n=1`` with the sample's
  own seed, as the JustRL release does (``seed=seed`` per request, temperature, top-p, max tokens);
- :func:`parse_output`: a ``vllm.RequestOutput`` -> :class:`~justrl.generation.Completion`.

Prompts follow the :mod:`justrl.generation` conventions: they are chat-templated strings,
tokenised here without adding special tokens (the chat template has put in what the model
expects; vLLM's own ``LLM.chat`` does the same) and passed to vLLM as token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from justrl.errors import BackendUnavailable
from justrl.generation import Completion, SamplingParams

INSTALL_HINT = (
    "the vllm backend needs vLLM and a GPU: pip install 'justrl[vllm]' (or the vllm build matching "
    "your CUDA). Without a GPU use --backend hf."
)


class VLLMUnavailable(BackendUnavailable):
    """vLLM is not installed (or cannot be imported) here."""


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    return vllm


def build_sampling_params(
    vllm: Any, params: SamplingParams, seeds: Sequence[int], *, logprobs: bool = False
) -> list[Any]:
    """One ``vllm.SamplingParams`` per sample: n=1, its own seed, the run's sampling settings.

    ``temperature == 0`` is greedy in both vLLM and :class:`HFGenerator`.
    """
    return [
        vllm.SamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=int(seed),
            logprobs=0 if logprobs else None,  # 0: only the sampled token's log-prob
        )
        for seed in seeds
    ]


def parse_output(request_output: Any) -> Completion:
    """The first (only) sample of a ``vllm.RequestOutput`` as a Completion.

    vLLM's ``text`` already leaves out the stop token; ``token_ids`` keep it, as ours do.
    vLLM reports ``finish_reason`` ``"stop"`` or ``"length"`` (and ``"abort"`` for a request it
    dropped, which is passed on so the caller can tell).
    """
    out = request_output.outputs[0]
    token_ids = [int(t) for t in out.token_ids]
    logprobs: list[float] = []
    if out.logprobs:
        logprobs = [float(step[tok].logprob) for step, tok in zip(out.logprobs, token_ids)]
    return Completion(text=out.text, token_ids=token_ids, logprobs=logprobs,
                      finish_reason=str(out.finish_reason or "length"))


class VLLMGenerator:
    """Sampling with one vLLM engine (``vllm.LLM``) behind the :class:`Generator` protocol.

    Args:
        model: hub id or local folder.
        tensor_parallel_size, gpu_memory_utilization, dtype, enforce_eager, max_model_len: passed
            to ``vllm.LLM``. The release ran with ``enforce_eager=True`` (a speed setting only).
        logprobs: also return each sampled token's log-prob (vLLM's, which by default come from
            the raw logits, not the temperature-scaled distribution :class:`HFGenerator` uses).
        llm: an already built engine (for tests and reuse); ``model`` is then only a label.
    """

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        enforce_eager: bool = False,
        max_model_len: int | None = None,
        logprobs: bool = False,
        llm: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        self.vllm = import_vllm()
        self.model = model
        self.logprobs = logprobs
        if llm is None:
            llm = self.vllm.LLM(
                model=model,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                dtype=dtype,
                enforce_eager=enforce_eager,
                max_model_len=max_model_len,
                **engine_kwargs,
            )
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[Completion]:
        if seeds is None:
            seeds = [params.seed + i for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        token_prompts = [
            {"prompt_token_ids": self.tokenizer.encode(p, add_special_tokens=False)} for p in prompts
        ]
        requests = build_sampling_params(self.vllm, params, seeds, logprobs=self.logprobs)
        outputs = self.llm.generate(token_prompts, sampling_params=requests, use_tqdm=False)
        # vLLM returns outputs in input order; check it rather than trust it silently.
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        return [parse_output(o) for o in outputs]
