"""Compute accounting: tokens and FLOPs of a GRPO run, from its recipe or its logged metrics.

The usual dense-transformer estimate: a forward pass costs ``2 * N`` FLOPs per token and a
forward + backward ``6 * N``, for ``N`` non-embedding parameters. One GRPO step of the recipe does
- generation: a forward over every prompt and response token (``2N``; KV cache makes each token one pass),
- the old-policy log-probs: one more forward over prompt + response (``2N``),
- the update: forward + backward over prompt + response, ``ppo_epochs`` times (``6N`` each).
Attention's quadratic term is added per token as ``2 * n_layers * context * d_model`` per forward
(it matters at the recipe's 16k context).

Beside the FLOP estimate, the paper's own accounting (arXiv 2512.16649): the *token budget*
``steps x prompts per step x rollouts x context length`` (its ~1.4e11 for JustRL-DeepSeek-1.5B:
4,000 x 256 x 8 x 16,384 = 1.34e11), and GPU-hours *calibrated on its run* (32 A800-80GB GPUs for
about 15 days over about 4,000 steps), scaled to a recipe by steps and per-step token budget.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from justrl.errors import ConfigError, DataError, ModelLoadError
from justrl.recipe import Recipe


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP estimate needs to know about a model."""

    params: float
    """Non-embedding parameters."""
    n_layers: int
    d_model: int

    @classmethod
    def from_config(cls, config) -> ModelShape:
        """From a transformers config (Qwen2/Llama-style fields)."""
        d, layers = config.hidden_size, config.num_hidden_layers
        inter = getattr(config, "intermediate_size", 4 * d)
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", heads) or heads
        head_dim = getattr(config, "head_dim", None) or d // heads
        attn = d * heads * head_dim + 2 * d * kv_heads * head_dim + heads * head_dim * d
        mlp = 3 * d * inter  # gated MLP: gate, up, down
        return cls(params=float(layers * (attn + mlp)), n_layers=layers, d_model=d)


def model_shape(model: str | None) -> ModelShape:
    """The shape of a model from its config (a local folder or hub id); the paper's 1.5B without one."""
    if not model:
        return QWEN2_1_5B
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
        raise ModelLoadError(f"{model}: no such model folder")
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except Exception as exc:  # OSError, ValueError, hub errors: all "this is not a model config"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"{model}: cannot read a model config ({reason})") from exc
    try:
        return ModelShape.from_config(config)
    except AttributeError as exc:
        raise ModelLoadError(f"{model}: its config lacks {exc.name!r} (not a decoder-only transformer?)") from exc


# DeepSeek-R1-Distill-Qwen-1.5B / OpenMath-Nemotron-1.5B (Qwen2.5-Math-1.5B shape):
# 28 layers, d_model 1536, MLP 8960, 12 heads / 2 KV heads -> about 1.31e9 non-embedding parameters.
QWEN2_1_5B = ModelShape(params=1.31e9, n_layers=28, d_model=1536)


@dataclass(frozen=True)
class StepBudget:
    sequences: int
    prompt_tokens: float
    response_tokens: float
    generation_flops: float
    logprob_flops: float
    update_flops: float

    @property
    def total_flops(self) -> float:
        return self.generation_flops + self.logprob_flops + self.update_flops

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total_flops": self.total_flops}


def forward_flops_per_token(shape: ModelShape, context: float) -> float:
    """FLOPs of one token's forward pass at an average attended context of ``context`` tokens."""
    return 2 * shape.params + 2 * shape.n_layers * context * shape.d_model


def step_budget(recipe: Recipe, shape: ModelShape, mean_prompt_tokens: float, mean_response_tokens: float) -> StepBudget:
    """Tokens and FLOPs of one training step of ``recipe``."""
    sequences = recipe.prompts_per_step * recipe.rollouts_per_prompt
    tokens = mean_prompt_tokens + mean_response_tokens
    # Generation attends on average to the prompt plus half the response; the full passes attend to
    # half the sequence on average (causal mask).
    gen_per_token = forward_flops_per_token(shape, mean_prompt_tokens + mean_response_tokens / 2)
    full_per_token = forward_flops_per_token(shape, tokens / 2)
    generation = sequences * tokens * gen_per_token
    logprob = sequences * tokens * full_per_token
    update = recipe.ppo_epochs * 3 * sequences * tokens * full_per_token
    return StepBudget(sequences, sequences * mean_prompt_tokens, sequences * mean_response_tokens,
                      generation, logprob, update)


def run_budget(recipe: Recipe, shape: ModelShape, mean_prompt_tokens: float, mean_response_tokens: float,
               steps: int | None = None) -> dict[str, float]:
    """Totals over ``steps`` (default: the recipe's ``total_steps``)."""
    steps = recipe.total_steps if steps is None else steps
    one = step_budget(recipe, shape, mean_prompt_tokens, mean_response_tokens)
    return {
        "steps": steps,
        "flops_per_step": one.total_flops,
        "total_flops": steps * one.total_flops,
        "response_tokens_total": steps * one.response_tokens,
        "generation_share": one.generation_flops / one.total_flops,
    }


def gpu_hours(total_flops: float, peak_flops: float = 989e12, utilisation: float = 0.2) -> float:
    """Wall GPU-hours at a given peak (default: H100 bf16 dense) and model-FLOP utilisation."""
    if not (peak_flops > 0 and 0 < utilisation <= 1):
        raise ConfigError(f"need a positive peak and a utilisation in (0, 1] (got {peak_flops:g}, {utilisation:g})")
    return total_flops / (peak_flops * utilisation) / 3600


def check_assumptions(prompt_tokens: float, response_tokens: float, gpu_tflops: float, mfu: float) -> None:
    """Refuse assumptions that make the estimate meaningless (zero, negative, infinite, MFU > 1)."""
    problems = [f"{name} must be a positive number (got {value:g})"
                for name, value in (("mean prompt tokens", prompt_tokens), ("mean response tokens", response_tokens),
                                    ("GPU peak TFLOP/s", gpu_tflops))
                if not (math.isfinite(value) and value > 0)]
    if not 0 < mfu <= 1:
        problems.append(f"model-FLOP utilisation (mfu) must be in (0, 1] (got {mfu:g})")
    if problems:
        raise ConfigError("; ".join(problems))


def measured_tokens(run_dir: str | Path) -> tuple[int, float, float]:
    """(steps, mean prompt tokens, mean response tokens) from a native run's ``metrics.jsonl``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    if not (run_dir / "metrics.jsonl").is_file():
        raise DataError(f"{run_dir}: no metrics.jsonl (token counts are measured from a native run's metrics)")
    steps, prompt_lengths, response_lengths = 0, [], []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("response_length/mean"), (int, float)):
            continue
        steps += 1
        response_lengths.append(row["response_length/mean"])
        if "prompt_length/mean" in row:
            prompt_lengths.append(row["prompt_length/mean"])
    if not steps:
        raise DataError(f"{run_dir}: metrics.jsonl has no step with response_length/mean")
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return steps, mean(prompt_lengths), mean(response_lengths)


@dataclass(frozen=True)
class PaperRun:
    """What the paper reports of JustRL-DeepSeek-1.5B's run, the calibration of the accounting."""

    gpus: int = 32
    gpu: str = "A800-80GB"
    gpu_peak_tflops: float = 312.0
    """A800 (A100-class) dense bf16 peak."""
    days: float = 15.0
    steps: int = 4000
    prompts_per_step: int = 256
    rollouts_per_prompt: int = 8
    context_tokens: int = 16384
    token_budget: float = 1.4e11
    """The paper's headline figure ("about 1.4e11", half of ProRL-V2's, a fifth of BroRL's)."""

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.days * 24

    @property
    def tokens_per_step(self) -> float:
        return self.prompts_per_step * self.rollouts_per_prompt * self.context_tokens


PAPER_RUN = PaperRun()


def token_budget(recipe: Recipe, steps: int | None = None) -> float:
    """The paper's token budget: steps x prompts per step x rollouts x context (prompt + response) length."""
    steps = recipe.total_steps if steps is None else steps
    context = recipe.max_prompt_tokens + recipe.max_response_tokens
    return float(steps) * recipe.prompts_per_step * recipe.rollouts_per_prompt * context


def calibrated_gpu_hours(recipe: Recipe, steps: int | None = None, paper: PaperRun = PAPER_RUN) -> float:
    """GPU-hours on the paper's hardware: its run's GPU-hours per token of budget, times this budget."""
    return token_budget(recipe, steps) * paper.gpu_hours / (paper.steps * paper.tokens_per_step)


def paper_accounting(recipe: Recipe, total_flops: float, steps: int | None = None,
                     paper: PaperRun = PAPER_RUN) -> dict[str, Any]:
    """The paper's accounting for ``recipe``, the FLOP estimate's implied utilisation on the paper's
    hardware, and every assumption behind them, in words."""
    hours = calibrated_gpu_hours(recipe, steps, paper)
    implied = total_flops / (hours * 3600 * paper.gpu_peak_tflops * 1e12)
    return {
        "token_budget": token_budget(recipe, steps),
        "paper_token_budget": paper.token_budget,
        "calibrated_gpu_hours": hours,
        "calibrated_days_on_paper_cluster": hours / paper.gpus / 24,
        "implied_mfu_on_paper_hardware": implied,
        "assumptions": [
            "token budget = steps x prompts/step x rollouts x context (max_prompt_tokens + max_response_tokens), "
            "every response counted at the full context, as the paper counts it",
            f"paper's run: {paper.gpus} {paper.gpu} GPUs x ~{paper.days:g} days = {paper.gpu_hours:,.0f} GPU-hours "
            f"for ~{paper.steps:,} steps of {paper.prompts_per_step} x {paper.rollouts_per_prompt} x "
            f"{paper.context_tokens:,} tokens (token budget {paper.steps * paper.tokens_per_step:.3g}; "
            f"the paper says ~{paper.token_budget:.2g})",
            "calibrated GPU-hours scale the paper's GPU-hours per budget token to this recipe's budget "
            "(same hardware, same throughput per token)",
            f"implied utilisation = the FLOP estimate / (calibrated GPU-hours x {paper.gpu_peak_tflops:g} TFLOP/s "
            f"dense bf16 peak of an {paper.gpu})",
        ],
    }


def estimate(recipe: Recipe, *, model: str | None = None, run_dir: str | Path | None = None,
             prompt_tokens: float = 150.0, response_tokens: float = 6000.0, gpu_tflops: float = 989.0,
             mfu: float = 0.2) -> dict[str, Any]:
    """Everything ``justrl budget`` reports, as plain data (its ``--json`` output).

    Token lengths are measured from ``run_dir`` when given (the assumed prompt length stands in
    when the run did not log one), else assumed; all inputs are checked before anything is read.
    """
    check_assumptions(prompt_tokens, response_tokens, gpu_tflops, mfu)
    steps, source = None, "assumed"
    if run_dir is not None:
        steps, measured_prompt, response_tokens = measured_tokens(run_dir)
        prompt_tokens = measured_prompt or prompt_tokens
        source = f"measured over {steps} steps of {run_dir}"
    shape = model_shape(model)
    totals = run_budget(recipe, shape, prompt_tokens, response_tokens, steps)
    paper = paper_accounting(recipe, totals["total_flops"], steps)
    flop_assumptions = [
        f"FLOPs: 2N per generated token, 2N per token for the old log-probs, 6N per token per PPO epoch "
        f"(N = {shape.params:.3g} non-embedding parameters, {model or 'the Qwen2 1.5B shape'}), plus attention",
        f"FLOP estimate's tokens: mean prompt {prompt_tokens:,.0f} / response {response_tokens:,.0f} ({source})",
        f"FLOP estimate's GPU-hours: {gpu_tflops:g} TFLOP/s peak at {mfu:.0%} model-FLOP utilisation",
    ]
    return {
        "recipe": recipe.name, "model": model or "Qwen2 1.5B shape", "params": shape.params,
        "prompt_tokens": prompt_tokens, "response_tokens": response_tokens, "tokens_source": source,
        "sequences_per_step": recipe.prompts_per_step * recipe.rollouts_per_prompt, **totals,
        "gpu_tflops": gpu_tflops, "mfu": mfu,
        "gpu_hours": gpu_hours(totals["total_flops"], gpu_tflops * 1e12, mfu),
        **paper, "assumptions": paper["assumptions"] + flop_assumptions,
    }


def paper_rows(est: dict[str, Any]) -> list[tuple[str, str]]:
    """The paper's accounting as (quantity, value) rows of ``justrl budget``'s table."""
    return [
        ("token budget (steps x prompts x rollouts x context)",
         f"{est['token_budget']:.3g} (paper: ~{est['paper_token_budget']:.2g})"),
        (f"GPU-hours calibrated on the paper's run ({PAPER_RUN.gpus} {PAPER_RUN.gpu} x ~{PAPER_RUN.days:g} days)",
         f"{est['calibrated_gpu_hours']:,.0f} (~{est['calibrated_days_on_paper_cluster']:.1f} days on "
         f"{PAPER_RUN.gpus} GPUs)"),
        ("utilisation the FLOP estimate implies on that run", f"{est['implied_mfu_on_paper_hardware']:.1%}"),
    ]


# --- device memory --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryShape:
    """What the peak-memory estimate needs to know about a model."""

    params: float
    """All parameters, embeddings included."""
    n_layers: int
    d_model: int
    intermediate: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config, params: float) -> MemoryShape:
        heads = config.num_attention_heads
        return cls(params=float(params), n_layers=config.num_hidden_layers, d_model=config.hidden_size,
                   intermediate=getattr(config, "intermediate_size", 4 * config.hidden_size),
                   kv_heads=getattr(config, "num_key_value_heads", heads) or heads,
                   head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
                   vocab=config.vocab_size)


QWEN2_1_5B_MEMORY = MemoryShape(params=1.78e9, n_layers=28, d_model=1536, intermediate=8960, kv_heads=2,
                                head_dim=128, vocab=151936)
"""DeepSeek-R1-Distill-Qwen-1.5B / OpenMath-Nemotron-1.5B, untied embeddings: ~1.78e9 parameters."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak device memory (GiB) of one training step on one GPU, by phase.

    An estimate, not a measurement: it counts the tensors that dominate (float32 weights, gradients
    and AdamW moments, the bfloat16 rollout copy, the KV cache, saved activations, logit chunks) and
    leaves out the allocator's fragmentation, CUDA context and workspaces (a few GiB).
    """

    states_gib: float
    """float32 weights and AdamW's two moments (alive the whole run)."""
    gradients_gib: float
    """float32 gradients (alive during the update only)."""
    rollout_copy_gib: float
    """The bfloat16 copy the transformers backends sample with (vLLM: its own weights)."""
    kv_cache_gib: float
    """Rollout KV cache: hf-static's bucket (rows x cache length), or vLLM's pool."""
    activations_gib: float
    """What one micro-batch's forward keeps for backward, bfloat16 weight casts and logit chunks included."""

    @property
    def rollout_gib(self) -> float:
        return self.states_gib + self.rollout_copy_gib + self.kv_cache_gib

    @property
    def update_gib(self) -> float:
        return self.states_gib + self.gradients_gib + self.rollout_copy_gib + self.activations_gib

    @property
    def peak_gib(self) -> float:
        return max(self.rollout_gib, self.update_gib)


def peak_memory_estimate(recipe: Recipe, shape: MemoryShape = QWEN2_1_5B_MEMORY, *, rollout_rows: int | None = None,
                         device_gib: float = 80.0, length_bucket: int = 256,
                         logits_chunk_elements: int = 2**27) -> MemoryEstimate:
    """:class:`MemoryEstimate` of ``recipe`` on one GPU of ``device_gib`` (bfloat16 autocast).

    ``rollout_rows``: rows of one hf-static batch (default the trainer's,
    :meth:`~justrl.recipe.Recipe.rollout_batch_rows`); with ``rollout_backend=vllm`` the KV pool is
    ``vllm_gpu_memory_utilization x device_gib`` instead (asleep, i.e. freed, during the update).
    Validation batches are sized to the same KV budget (:func:`justrl.train.backend.validation_batch_size`).
    ``logits_chunk_elements``: the trainer's ``LOGITS_CHUNK_ELEMENTS`` (``justrl.train.logprobs``;
    dynamics does not import train, a test keeps the two equal).
    """
    gib, p = 2.0**30, shape.params
    rows = rollout_rows or recipe.rollout_batch_rows()
    length = -(-(recipe.max_prompt_tokens + recipe.max_response_tokens) // length_bucket) * length_bucket
    kv_per_token = shape.n_layers * 2 * shape.kv_heads * shape.head_dim * 2  # K and V, bfloat16
    if recipe.rollout_backend == "vllm":
        kv = recipe.vllm_gpu_memory_utilization * device_gib * gib - 2 * p
    else:
        kv = rows * length * kv_per_token
    row_tokens = recipe.max_prompt_tokens + recipe.max_response_tokens
    tokens = max(recipe.micro_batch_tokens, row_tokens) if recipe.micro_batch_tokens > 0 \
        else recipe.micro_batch_sequences * row_tokens
    d, inter = shape.d_model, shape.intermediate
    # one layer's forward, per token: q/k/v/o and MLP (gate, up, activation, product) in bfloat16,
    # the float32 residual stream and norm inputs; backward holds about as much again
    one_layer = 2 * (6 * d + 4 * inter) + 8 * d
    if recipe.gradient_checkpointing:
        saved = tokens * shape.n_layers * d * 2 + 2 * tokens * one_layer  # layer inputs + the recomputed layer
    else:
        saved = tokens * shape.n_layers * one_layer + tokens * one_layer
    logits = min(tokens * shape.vocab, logits_chunk_elements) * (2 + 4 + 4)  # bf16, float32, its gradient
    activations = saved + logits + 2 * p  # autocast's bfloat16 casts of the weights
    return MemoryEstimate(states_gib=12 * p / gib, gradients_gib=4 * p / gib,
                          rollout_copy_gib=(0.0 if recipe.rollout_backend == "vllm" else 2 * p / gib),
                          kv_cache_gib=kv / gib, activations_gib=activations / gib)
