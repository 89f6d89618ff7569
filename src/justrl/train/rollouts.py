"""Prompts -> rollouts -> rewards: what the training loop calls for each step before the update.

- :func:`load_problems` and :func:`encode_prompts`: a data set's problems as token ids of their
  chat-formatted prompts (over-long ones dropped).
- :func:`next_prompts`: the step's batch, in a seeded order that a resumed run repeats.
- :func:`generate_rollouts`: ``rollouts_per_prompt`` sampled responses to each prompt, with the
  sampler's own log-probs (compared later with the trainer's).
- :func:`score_rollouts`: the verifier's +1/-1, plus DAPO's overlong penalty when the recipe asks.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from justrl import logs
from justrl.data import toy
from justrl.generate.hf import HFGenerator, SamplingParams
from justrl.recipe import Recipe
from justrl.train.devices import derive_seed

if TYPE_CHECKING:
    from justrl.train.runs import TrainState

log = logs.get(__name__)


@dataclass(frozen=True)
class Prompt:
    """A problem and its prompt as the policy sees it."""

    ids: list[int]
    ground_truth: str
    problem_id: str
    source: str


def load_problems(name: str, split: str, dedupe: bool = True, answer_from: str = "answer") -> list[Any]:
    """Problems of a data set: the toy task, a benchmark name (AIME24), the release's validation
    rows (``release:AIME24``), a file, or a hub data set; repeated rows dropped when ``dedupe``.

    ``answer_from`` (the recipe's): where a file's ground truth comes from (see :func:`justrl.data.problems.load`)."""
    if name == toy.TOY_SOURCE:
        return toy.make_problems(split)
    from justrl.data import benchmarks, problems, release_data

    if release_data.is_release_name(name):
        return release_data.load_val(name)
    if not Path(name).exists():
        try:
            bench = benchmarks.get(name)
        except benchmarks.BenchmarkDataError:
            pass
        else:
            return benchmarks.load_problems(benchmarks.locate([bench])[bench.name])
    return problems.load(name, dedupe=dedupe, answer_from=answer_from)


def user_message(problem: Any, recipe: Recipe) -> str:
    """The user turn of ``problem`` in the recipe's ``prompt_format`` (``release``: the text as
    published, DAPO's instructions kept, + suffix, as the release's dataset code built it)."""
    from justrl.data.problems import build_prompt

    return build_prompt(problem, recipe.prompt_suffix, recipe.prompt_format)


def encode_prompts(problems: Sequence[Any], tokenizer, recipe: Recipe) -> list[Prompt]:
    """Prompts in the recipe's format, through the chat template; over-long ones are dropped.
    Each distinct message is tokenized once (the published DAPO-Math-17k repeats each ~100 times)."""
    from justrl.data.problems import unwrap_boxed

    if recipe.use_chat_template and getattr(tokenizer, "chat_template", None) is None:
        from justrl.errors import ModelLoadError

        raise ModelLoadError(
            f"the tokenizer of {recipe.model!r} has no chat template (use_chat_template=true sends each "
            "problem as a user turn through it): save the tokenizer with the model, or "
            "use_chat_template=false")
    out = []
    encoded: dict[str, list[int]] = {}
    for p in problems:
        text = user_message(p, recipe)
        if text not in encoded:
            if recipe.use_chat_template:
                chat = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                     add_generation_prompt=True, tokenize=False)
                encoded[text] = list(tokenizer(chat, add_special_tokens=False)["input_ids"])
            else:
                encoded[text] = list(tokenizer(text)["input_ids"])
        ids = encoded[text]
        if len(ids) > recipe.max_prompt_tokens:
            continue
        out.append(Prompt(ids, unwrap_boxed(p.ground_truth), p.id, p.source))
    if len(out) < len(problems):
        log.info("dropped %d of %d prompts longer than max_prompt_tokens=%d",
                 len(problems) - len(out), len(problems), recipe.max_prompt_tokens)
    return out


def rollout_seed(recipe: Recipe) -> int:
    """The base of the rollout sampling seeds: ``rollout_seed`` (release: 0), else ``seed``."""
    return recipe.seed if recipe.rollout_seed is None else recipe.rollout_seed


@functools.lru_cache(maxsize=2)
def release_order(size: int, data_seed: int, epoch: int) -> tuple[int, ...]:
    """Pass ``epoch``'s order as verl's sampler draws it: ``torch.randperm`` from one generator
    seeded ``data_seed`` once (verl's ``create_rl_sampler`` with ``data.seed``), one call a pass."""
    generator = torch.Generator().manual_seed(data_seed)
    for _ in range(epoch):
        torch.randperm(size, generator=generator)
    return tuple(torch.randperm(size, generator=generator).tolist())


def next_prompts(train_set: Sequence[Prompt], state: TrainState, count: int, seed: int,
                 data_seed: int | None = None) -> list[Prompt]:
    """The next ``count`` prompts; advances the cursor in ``state`` (``epoch``, ``position``), which
    checkpoints keep, so a resumed run draws the same batches.

    With ``data_seed`` (the release's order): consecutive slices of :func:`release_order`, a pass's
    last partial batch dropped (verl's ``drop_last``). Without: each epoch shuffled from ``seed``,
    a batch running on into the next epoch (justrl's former order)."""
    if data_seed is not None:
        if state.position + count > len(train_set):
            state.epoch, state.position = state.epoch + 1, 0
        take = release_order(len(train_set), data_seed, state.epoch)[state.position:state.position + count]
        state.position += len(take)
        return [train_set[i] for i in take]
    out: list[Prompt] = []
    while len(out) < count:
        order = list(range(len(train_set)))
        random.Random(derive_seed(seed, "data", state.epoch)).shuffle(order)
        take = order[state.position:state.position + count - len(out)]
        out += [train_set[i] for i in take]
        state.position += len(take)
        if state.position >= len(train_set):
            state.epoch, state.position = state.epoch + 1, 0
    return out


@dataclass
class Rollouts:
    """A step's sampled responses, one entry per sequence (prompt-major: group ``g`` is contiguous)."""

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    sampler_log_probs: list[list[float]]
    truncated: list[bool]
    texts: list[str]
    ground_truths: list[str]
    group: list[int]
    pad_id: int
    """Filler id for padding (always masked)."""

    def __len__(self) -> int:
        return len(self.response_ids)


def generate_rollouts(generator: HFGenerator, batch: Sequence[Prompt], recipe: Recipe, seed: int) -> Rollouts:
    """``rollouts_per_prompt`` responses to each prompt at the rollout temperature and top-p."""
    n = recipe.rollouts_per_prompt
    prompt_ids = [p.ids for p in batch for _ in range(n)]
    params = SamplingParams(temperature=recipe.temperature, top_p=recipe.top_p,
                            max_new_tokens=recipe.max_response_tokens, seed=seed)
    completions = generator.generate_from_ids(prompt_ids, params)
    return Rollouts(
        prompt_ids=prompt_ids,
        response_ids=[c.token_ids for c in completions],
        sampler_log_probs=[c.logprobs for c in completions],
        truncated=[c.finish_reason == "length" for c in completions],
        texts=[c.text for c in completions],
        ground_truths=[p.ground_truth for p in batch for _ in range(n)],
        group=[g for g in range(len(batch)) for _ in range(n)],
        pad_id=generator.pad_token_id,
    )


def score_rollouts(rollouts: Rollouts, recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rewards (B,), correct (B,))``: the verifier's +1/-1, plus the overlong penalty when on."""
    from justrl.verifiers import verify_batch

    verdicts = verify_batch(recipe.verifier, rollouts.texts, rollouts.ground_truths)
    correct = torch.tensor([v.correct for v in verdicts])
    rewards = torch.where(correct, recipe.reward_correct, recipe.reward_incorrect).to(torch.float32)
    if recipe.overlong_buffer_tokens > 0:
        lengths = torch.tensor([len(r) for r in rollouts.response_ids], dtype=torch.float32)
        rewards = rewards + overlong_penalty(lengths, recipe.max_response_tokens,
                                             recipe.overlong_buffer_tokens, recipe.overlong_penalty_factor)
    return rewards, correct


def overlong_penalty(lengths: torch.Tensor, max_response_tokens: int, buffer_tokens: int,
                     factor: float) -> torch.Tensor:
    """DAPO's soft overlong punishment (verl ``DAPORewardManager``), added to the reward.

    0 up to ``max_response_tokens - buffer_tokens`` tokens, then falling linearly to ``-factor`` at
    ``max_response_tokens``: ``min(0, -(length - expected) / buffer_tokens * factor)``.
    """
    expected = max_response_tokens - buffer_tokens
    return torch.clamp(-(lengths - expected) / buffer_tokens * factor, max=0.0)


def groups_with_signal(rewards: torch.Tensor, group: Sequence[int]) -> float:
    """Share of prompts whose rollouts did not all get the same reward (only those move the policy)."""
    by_group: dict[int, set[float]] = {}
    for g, r in zip(group, rewards.tolist()):
        by_group.setdefault(g, set()).add(r)
    return sum(len(v) > 1 for v in by_group.values()) / max(1, len(by_group))
