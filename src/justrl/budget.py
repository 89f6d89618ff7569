"""Compute accounting: tokens and FLOPs of a GRPO run, from its recipe or its logged metrics.

The usual dense-transformer estimate: a forward pass costs ``2 * N`` FLOPs per token and a
forward + backward ``6 * N``, for ``N`` non-embedding parameters. One GRPO step of the recipe does
- generation: a forward over every prompt and response token (``2N``; KV cache makes each token one pass),
- the old-policy log-probs: one more forward over prompt + response (``2N``),
- the update: forward + backward over prompt + response, ``ppo_epochs`` times (``6N`` each).
Attention's quadratic term is added per token as ``2 * n_layers * context * d_model`` per forward
(it matters at the recipe's 16k context).
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
    return {
        "recipe": recipe.name, "model": model or "Qwen2 1.5B shape", "params": shape.params,
        "prompt_tokens": prompt_tokens, "response_tokens": response_tokens, "tokens_source": source,
        "sequences_per_step": recipe.prompts_per_step * recipe.rollouts_per_prompt, **totals,
        "gpu_tflops": gpu_tflops, "mfu": mfu,
        "gpu_hours": gpu_hours(totals["total_flops"], gpu_tflops * 1e12, mfu),
    }
