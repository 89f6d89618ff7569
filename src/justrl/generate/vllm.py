"""The vLLM generation backend: one engine per process (per Ray worker), same protocol as ``hf``.

vLLM is optional (``pip install 'justrl[vllm]'`` on a GPU machine); importing this module never
needs it, building a :class:`VLLMGenerator` without it raises :class:`VLLMUnavailable` saying
what to install.

The boundary with vLLM is two pure functions, tested on CPU against a stand-in:

- :func:`build_sampling_params`: one ``vllm.SamplingParams`` per prompt, ``n=1`` with the sample's
  own seed, as the JustRL release does (``seed=seed`` per request, temperature, top-p, max tokens);
- :func:`parse_output`: a ``vllm.RequestOutput`` -> :class:`~justrl.generate.hf.Completion`.

Prompts follow the :mod:`justrl.generate.hf` conventions: they are chat-templated strings,
tokenised here without adding special tokens (the chat template has put in what the model
expects; vLLM's own ``LLM.chat`` does the same) and passed to vLLM as token ids.

Only ``stop`` and ``length`` are final finish reasons: a request vLLM aborted or failed
(``abort``, ``error``, ...) is sent again, and what is still not final after ``retries`` is
returned as it is, for the caller to leave unwritten (:func:`is_final`). :func:`release` ends an
engine for good (its worker processes and GPU memory), so that another can start in its place.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from justrl import logs
from justrl.errors import BackendUnavailable
from justrl.generate.hf import Completion, SamplingParams

log = logs.get(__name__)

SUPPORTED_VLLM = ((0, 19, 1), (0, 34))
"""vLLM releases this backend works with, ``[low, high)``: 0.19.1 is the first whose pins admit
transformers 5 (older ones read tokenizer attributes transformers 5 removed and fail in
``LLM(...)``); 0.33 is the newest read against. Keep in step with pyproject's ``vllm`` extra."""

INSTALL_HINT = (
    "the vllm backend needs vLLM and a GPU: pip install 'justrl[vllm]' (or the vllm build matching "
    "your CUDA). Without a GPU use --backend hf."
)

FINAL_FINISH_REASONS = ("stop", "length")
"""A completion that ended for one of these is a sample; any other (abort, error) is not."""


class VLLMUnavailable(BackendUnavailable):
    """vLLM is not installed, cannot be imported, or is a release this backend does not support."""


def _release(version: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def _range_text() -> str:
    low, high = SUPPORTED_VLLM
    return f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"


def check_vllm_version(version: str) -> None:
    """Refuse a vLLM outside :data:`SUPPORTED_VLLM`, saying which range to install."""
    low, high = SUPPORTED_VLLM
    release = _release(version)
    if not low <= release < high:
        raise VLLMUnavailable(
            f"vLLM {version} is installed; justrl's vllm backend supports vllm{_range_text()} (with "
            f"transformers 5): pip install 'vllm{_range_text()}' (or 'justrl[vllm]')"
        )


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailable(f"{INSTALL_HINT} ({exc})") from exc
    check_vllm_version(str(getattr(vllm, "__version__", "0")))
    return vllm


def is_final(completion: Any) -> bool:
    """Whether a completion is a finished sample (``stop`` or ``length``), one to write."""
    return getattr(completion, "finish_reason", "stop") in FINAL_FINISH_REASONS


def release(generator: Any) -> None:
    """End a generation backend and free its memory before another starts.

    Calls its ``close()`` (for vLLM: the engine's shutdown, which stops the engine's worker
    processes), then collects garbage and empties the CUDA cache, so the GPU memory is free for
    the next engine (vLLM refuses to start when less than its share is free).
    """
    close = getattr(generator, "close", None)
    if callable(close):
        close()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def shutdown_engine(llm: Any) -> None:
    """vLLM's own shutdown of an ``LLM``: ``LLM.shutdown()`` where it exists, else the V1 engine
    core client's ``shutdown()`` (0.19-0.33), which ends the engine-core process."""
    stop = getattr(llm, "shutdown", None)
    if not callable(stop):
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        stop = getattr(core, "shutdown", None)
    if callable(stop):
        stop()


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
    vLLM reports ``finish_reason`` ``"stop"`` or ``"length"``, or another reason (``"abort"``,
    ``"error"``) for a request it did not finish, which is passed on so the caller can tell; a
    missing one (a request still running) is ``"unfinished"``.
    """
    out = request_output.outputs[0]
    token_ids = [int(t) for t in out.token_ids]
    logprobs: list[float] = []
    if out.logprobs:
        logprobs = [float(step[tok].logprob) for step, tok in zip(out.logprobs, token_ids)]
    return Completion(text=out.text, token_ids=token_ids, logprobs=logprobs,
                      finish_reason=str(out.finish_reason or "unfinished"))


class VLLMGenerator:
    """Sampling with one vLLM engine (``vllm.LLM``) behind the :class:`Generator` protocol.

    Args:
        model: hub id or local folder.
        tensor_parallel_size, gpu_memory_utilization, dtype, enforce_eager, max_model_len: passed
            to ``vllm.LLM``. The release ran with ``enforce_eager=True`` (a speed setting only).
        logprobs: also return each sampled token's log-prob (vLLM's, which by default come from
            the raw logits, not the temperature-scaled distribution :class:`HFGenerator` uses).
        retries: times a request that ended unfinished (not ``stop``/``length``) is sent again.
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
        retries: int = 2,
        llm: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        self.vllm = import_vllm()
        self.model = model
        self.logprobs = logprobs
        self.retries = retries
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

    @property
    def max_model_len(self) -> int | None:
        """The engine's context (prompt + response), as vLLM settled it."""
        config = getattr(self.llm, "model_config", None) or getattr(
            getattr(self.llm, "llm_engine", None), "model_config", None)
        value = getattr(config, "max_model_len", None)
        return int(value) if isinstance(value, int) else None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[Completion]:
        """One completion per prompt; requests that ended unfinished are sent again (same seed)
        up to ``retries`` times, and returned unfinished after that (see :func:`is_final`)."""
        if seeds is None:
            seeds = [params.seed + i for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        token_prompts = [
            {"prompt_token_ids": self.tokenizer.encode(p, add_special_tokens=False)} for p in prompts
        ]
        results = self._generate(token_prompts, params, list(seeds))
        for attempt in range(self.retries):
            redo = [i for i, c in enumerate(results) if not is_final(c)]
            if not redo:
                break
            reasons = sorted({results[i].finish_reason for i in redo})
            log.warning("vllm: %d requests ended %s; sending them again (retry %d of %d)",
                        len(redo), "/".join(reasons), attempt + 1, self.retries)
            again = self._generate([token_prompts[i] for i in redo], params, [seeds[i] for i in redo])
            for i, completion in zip(redo, again):
                results[i] = completion
        return results

    def _generate(self, token_prompts: list[dict[str, Any]], params: SamplingParams,
                  seeds: list[int]) -> list[Completion]:
        requests = build_sampling_params(self.vllm, params, seeds, logprobs=self.logprobs)
        outputs = self.llm.generate(token_prompts, sampling_params=requests, use_tqdm=False)
        # vLLM returns outputs in input order; check it rather than trust it silently.
        if len(outputs) != len(token_prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(token_prompts)} prompts")
        return [parse_output(o) for o in outputs]

    def close(self) -> None:
        """Shut the engine down (vLLM's shutdown, then drop it); see :func:`release`."""
        if self.llm is not None:
            shutdown_engine(self.llm)
            self.llm = None
