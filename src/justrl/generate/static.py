"""Fast rollouts on one GPU without vLLM: a static KV cache and a compiled decode step.

:class:`HFGenerator` runs a dynamic cache, reads every sampled token back to the host and launches
every kernel anew per token; on a GPU a decode step of a 1.5B model is then bound by Python and
launch overhead, not by the chip. :class:`StaticCacheGenerator` keeps the same protocol and the same
sampler (so the same tokens and log-probs for the same seeds) and changes how the loop runs:

- **Static shapes.** A batch of ``n`` prompts runs as ``rows`` = the next power of two >= ``n``
  (filler rows are marked finished from the start), in a transformers ``StaticCache`` whose length
  is ``prompt + max_new_tokens`` rounded up to ``length_bucket``. Each (rows, length) pair is a
  *bucket*: its cache is allocated once and reused, and the decode step is compiled once per bucket
  (``torch.compile``; ``mode="reduce-overhead"`` on CUDA captures it as a CUDA graph).
- **No per-token host sync.** Tokens, log-probs, lengths and the finished flags stay on the device;
  the host looks at them only every ``check_every`` steps (to stop when every row has finished) and
  once at the end.
- **Finished rows do not slow the rest.** At those checks, when the rows still running fit a smaller
  bucket, the batch is compacted into it (the live rows' cache entries are copied over), so the
  decode step shrinks as rows finish.

The prompt pass (prefill) runs eagerly, as transformers' own ``generate`` does with a static cache:
its shapes vary with the prompts, and it is run once per batch.

Sampling is :func:`justrl.generate.hf.sample` on the device, with each row's uniforms drawn up front
from its own seed (:func:`justrl.generate.hf.row_uniforms`): the log-probs are those of
``softmax(logits / temperature)`` before top-p, the quantity the trainer recomputes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from justrl import logs
from justrl.generate.hf import (
    Completion,
    HFGenerator,
    SamplingParams,
    completions,
    left_pad,
    position_ids,
    row_uniforms,
    sample,
)

log = logs.get(__name__)


def bucket_rows(n: int, limit: int) -> int:
    """Rows a batch of ``n`` runs as: the next power of two >= ``n`` (at least 1), capped at ``limit``."""
    rows = 1
    while rows < n:
        rows *= 2
    return max(n, min(rows, limit))


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class StaticCacheGenerator(HFGenerator):
    """:class:`HFGenerator`'s protocol and sampler over a static cache and a compiled decode step.

    Args:
        model, tokenizer, batch_size, autocast_dtype: as for :class:`HFGenerator`.
        compile: compile the decode step with ``torch.compile``; default: on CUDA only (on a CPU
            compilation costs more than it saves for the small models run there).
        compile_mode: ``torch.compile`` mode; default ``"reduce-overhead"`` (CUDA graphs) on CUDA,
            ``"default"`` elsewhere.
        compile_backend: ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` traces the same
            graph without generating kernels, which is how the CPU tests exercise it quickly).
        length_bucket: cache lengths are rounded up to a multiple of this (fewer compilations).
        check_every: decode steps between looks at the finished flags (the only host syncs).
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 256,
                 autocast_dtype: torch.dtype | None = None, compile: bool | None = None,
                 compile_mode: str | None = None, compile_backend: str = "inductor",
                 length_bucket: int = 256, check_every: int = 16) -> None:
        super().__init__(model, tokenizer, batch_size=batch_size, autocast_dtype=autocast_dtype)
        if length_bucket <= 0 or check_every <= 0:
            raise ValueError("length_bucket and check_every must be > 0")
        on_cuda = self.device.type == "cuda"
        self.compile = on_cuda if compile is None else compile
        self.compile_mode = compile_mode or ("reduce-overhead" if on_cuda else "default")
        self.compile_backend = compile_backend
        self.length_bucket = length_bucket
        self.check_every = check_every
        self._caches: dict[tuple[int, int], Any] = {}
        self._compiled: Callable[..., torch.Tensor] | None = None
        self.compactions = 0
        """How many times a batch was moved into a smaller bucket (for tests and benchmarks)."""

    def release_memory(self) -> None:
        """Drop every bucket's cache (before the policy update: at 64 rows x 16k tokens a bucket of a
        1.5B model holds ~29 GiB); the next batch allocates its bucket anew."""
        self._caches.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # --- the cache and the decode step ------------------------------------------------------------

    def _cache(self, rows: int, length: int) -> Any:
        """The bucket's static cache, reset; caches of other lengths are dropped (memory)."""
        from transformers import StaticCache

        for key in [k for k in self._caches if k[1] != length]:
            del self._caches[key]
        cache = self._caches.get((rows, length))
        if cache is None:
            cache = self._caches[(rows, length)] = StaticCache(config=self.model.config, max_cache_len=length)
        else:
            cache.reset()
        return cache

    def _logits(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor,
                cache: Any) -> torch.Tensor:
        """Last-position logits (float32) of one forward pass that fills ``cache``."""
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                         use_cache=True, logits_to_keep=1, **{self._cache_arg: cache})
        return out.logits[:, -1].float()

    def _decode(self, token: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor,
                cache: Any) -> torch.Tensor:
        """One decode step: compiled when asked (once per bucket), else eager."""
        if not self.compile:
            return self._logits(token, attention, positions, cache)
        if self._compiled is None:
            import torch._dynamo

            # one compiled graph per bucket: allow more than dynamo's default of 8
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            options: dict[str, Any] = {"backend": self.compile_backend, "dynamic": False}
            if self.compile_backend == "inductor":
                options["mode"] = self.compile_mode
            self._compiled = torch.compile(self._logits, **options)
        if self.compile_mode == "reduce-overhead" and token.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's logits are consumed
        return self._compiled(token, attention, positions, cache).clone()

    # --- one batch --------------------------------------------------------------------------------

    @torch.no_grad()
    def _generate_batch(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
                        seeds: Sequence[int]) -> list[Completion]:
        device, n, steps = self.device, len(prompt_ids), params.max_new_tokens
        rows = bucket_rows(n, max(self.batch_size, n))
        width = max(len(p) for p in prompt_ids)
        length = round_up(width + steps, self.length_bucket)
        # filler rows copy the first prompt; they are finished from the start and never returned
        padded_ids, prompt_mask = left_pad(list(prompt_ids) + [prompt_ids[0]] * (rows - n),
                                           self.pad_token_id, device)
        attention = torch.zeros(rows, length, dtype=torch.long, device=device)
        attention[:, :width] = prompt_mask
        state = _DecodeState(
            order=torch.arange(rows, device=device),
            done=torch.arange(rows, device=device) >= n,
            uniforms=row_uniforms(list(seeds) + [0] * (rows - n), steps, device),
            attention=attention,
            positions=position_ids(prompt_mask)[:, -1:],
            cache=self._cache(rows, length),
        )
        # outputs by original row; row ``rows`` is scratch for the fillers added by compaction
        tokens = torch.full((rows + 1, max(steps, 1)), self.pad_token_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(rows + 1, max(steps, 1), device=device)
        lengths = torch.zeros(rows + 1, dtype=torch.long, device=device)
        stopped = torch.zeros(rows + 1, dtype=torch.bool, device=device)
        stop = torch.tensor(sorted(self.stop_token_ids), device=device)

        logits = self._logits(padded_ids, attention, position_ids(prompt_mask), state.cache)
        for step in range(steps):
            token, token_logprob = sample(logits, state.uniforms[:, step], params.temperature, params.top_p)
            live = ~state.done
            tokens[state.order, step] = token
            logprobs[state.order, step] = token_logprob.float()
            lengths.index_add_(0, state.order, live.long())
            hit = live & torch.isin(token, stop)
            stopped[state.order] = stopped[state.order] | hit  # repeats only on the scratch row
            state.done = state.done | hit
            if step == steps - 1:
                break
            if (step + 1) % self.check_every == 0:
                running = int((~state.done).sum())  # the only host sync inside the loop
                if running == 0:
                    break
                smaller = bucket_rows(running, state.rows)
                if smaller < state.rows and self._compact(state, smaller, length, rows):
                    token = token[state.kept]
            state.attention[:, width + step] = 1
            state.positions = state.positions + 1
            logits = self._decode(token.unsqueeze(-1), state.attention, state.positions, state.cache)

        lengths, stopped = lengths[:n].tolist(), stopped[:n].tolist()
        token_rows, logprob_rows = tokens[:n].tolist(), logprobs[:n].tolist()
        return completions(
            self.tokenizer,
            [ids[:k] for ids, k in zip(token_rows, lengths)],
            [lps[:k] for lps, k in zip(logprob_rows, lengths)],
            ["stop" if s else "length" for s in stopped],
        )

    def _compact(self, state: _DecodeState, rows: int, length: int, scratch: int) -> bool:
        """Move the running rows of ``state`` into the ``rows`` bucket; False if the cache cannot."""
        live = (~state.done).nonzero().squeeze(-1)
        kept = torch.cat([live, live[:1].expand(rows - len(live))])
        target = self._cache(rows, length)
        try:
            copy_cache_rows(state.cache, target, kept)
        except (AttributeError, TypeError) as exc:  # another transformers' cache layout
            log.debug(f"static cache compaction unavailable ({exc}); keeping the batch as it is")
            return False
        filler = torch.arange(rows, device=live.device) >= len(live)
        state.order = torch.where(filler, scratch, state.order[kept])
        state.done = filler
        state.uniforms, state.attention = state.uniforms[kept], state.attention[kept]
        state.positions, state.cache, state.kept = state.positions[kept], target, kept
        self.compactions += 1
        return True


class _DecodeState:
    """What changes when a batch is compacted: row order, flags, uniforms, mask, positions, cache."""

    def __init__(self, *, order: torch.Tensor, done: torch.Tensor, uniforms: torch.Tensor,
                 attention: torch.Tensor, positions: torch.Tensor, cache: Any) -> None:
        self.order, self.done, self.uniforms = order, done, uniforms
        self.attention, self.positions, self.cache = attention, positions, cache
        self.kept = torch.arange(len(order), device=order.device)

    @property
    def rows(self) -> int:
        return len(self.order)


def copy_cache_rows(source: Any, target: Any, rows: torch.Tensor) -> None:
    """Copy batch rows ``rows`` of a filled static cache into ``target`` (same length, len(rows) rows).

    ``target``'s tensors keep their addresses (compiled graphs captured on them stay valid): its
    layers are allocated on first use with the source's dtype and device, then overwritten in place.
    """
    for src, dst in zip(source.layers, target.layers, strict=True):
        keys, values = src.keys.index_select(0, rows), src.values.index_select(0, rows)
        if not dst.is_initialized:
            dst.lazy_initialization(keys, values)
        dst.keys.copy_(keys)
        dst.values.copy_(values)
        dst.cumulative_length.copy_(src.cumulative_length)
