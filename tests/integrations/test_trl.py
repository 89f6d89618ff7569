"""justrl.integrations.trl: the recipe as a GRPOConfig, the graders as TRL reward functions, and
TRL's GRPOTrainer training the CPU demo's policy with them, for real."""

from __future__ import annotations

import math
import warnings

import pytest

from justrl import recipe as recipe_mod
from justrl.data import toy
from justrl.errors import ConfigError
from justrl.integrations import trl as jtrl
from justrl.verifiers import dapo_reward

pytest.importorskip("trl")


def test_grpo_config_maps_the_recipe_and_names_what_trl_lacks(tmp_path) -> None:
    paper = recipe_mod.load("justrl-deepseek-1.5b")
    with pytest.warns(UserWarning, match="TRL has no setting") as caught:
        config = jtrl.grpo_config(paper, output_dir=str(tmp_path), report_to="none")
    message = str(caught[0].message)
    assert "adv_epsilon" in message and "max_prompt_tokens" in message and "overlong" not in message
    assert (config.loss_type, config.beta, config.epsilon, config.epsilon_high, config.delta) == ("dapo", 0.0, 0.2, 0.28, 10.0)
    assert config.num_generations == 8 and config.temperature == 1.0 and config.top_p == 1.0
    assert config.max_completion_length == 15360 and config.learning_rate == 1e-6
    assert str(getattr(config.lr_scheduler_type, "value", config.lr_scheduler_type)) == "constant_with_warmup"
    # 256 prompts x 8 per step, 64-prompt mini-batches (512 sequences) in micro-batches of 8:
    assert config.per_device_train_batch_size == 8 and config.gradient_accumulation_steps == 64
    assert config.steps_per_generation == 4 * 64 and config.max_steps == 4000 * 4
    assert config.warmup_steps == 10 * 4 and config.weight_decay == 0.1 and config.max_grad_norm == 1.0
    assert config.scale_rewards == "group" and not config.mask_truncated_completions
    assert config.output_dir == str(tmp_path) and config.report_to in ([], "none", ["none"])

    with pytest.warns(UserWarning, match="loss_agg='seq-mean-token-sum'"):
        assert jtrl.grpo_config(recipe_mod.load("toy", {"loss_agg": "seq-mean-token-sum"}),
                                output_dir=str(tmp_path)).loss_type == "dr_grpo"
    with pytest.raises(ConfigError, match="multiple of micro_batch_sequences"):
        jtrl.config_arguments(recipe_mod.load("toy", {"micro_batch_sequences": 48}))


def test_reward_func_has_trls_signature_and_the_recipes_rewards() -> None:
    reward = jtrl.reward_func("dapo-strict")
    plain = reward(prompts=["1+2+3=?"] * 3, completions=["\\boxed{6}", "\\boxed{7}", "no box"],
                   ground_truth=["6", "6", "6"])
    assert plain == [1.0, -1.0, -1.0]
    chat = reward(prompts=[[{"role": "user", "content": "q"}]] * 2,
                  completions=[[{"role": "assistant", "content": "so \\boxed{12}"}],
                               [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{3}"}]}]],
                  ground_truth=["12", "4"])
    assert chat == [1.0, -1.0]
    lenient = jtrl.reward_func("lenient", recipe=recipe_mod.load("toy", {"reward_incorrect": 0.0}))
    assert lenient(prompts=["q"] * 2, completions=["\\boxed{0.5}", "\\boxed{2}"], ground_truth=["\\frac{1}{2}", "3"]) \
        == [1.0, 0.0]
    # the ablation's overlong penalty: the lengths are TRL's completion_ids
    ablation = recipe_mod.load("toy", {"overlong_buffer_tokens": 8, "max_response_tokens": 24})
    penalised = jtrl.reward_func("dapo-strict", recipe=ablation)
    assert penalised(prompts=["q"] * 3, completions=["\\boxed{6}"] * 3, ground_truth=["6"] * 3,
                     completion_ids=[[0] * 16, [0] * 20, [0] * 24]) == [1.0, 0.5, 0.0]
    with pytest.raises(ConfigError, match="no 'ground_truth' column"):
        reward(prompts=["q"], completions=["\\boxed{1}"], answer=["1"])
    with pytest.raises(ConfigError, match="unknown verifier"):
        jtrl.reward_func("no-such")


def test_trl_grpo_trainer_trains_the_demo_policy_with_the_recipe(model_dir, tmp_path) -> None:
    """A few real GRPOTrainer steps on the warm-started tiny policy and the toy task: the rewards TRL
    logged are the ones justrl's reward gives the same completions, and the weights moved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    recipe = recipe_mod.load("toy", {"model": str(model_dir), "total_steps": 2, "prompts_per_step": 8,
                                     "mini_batch_prompts": 4, "rollouts_per_prompt": 4,
                                     "micro_batch_sequences": 16, "max_response_tokens": 12, "warmup_steps": 0,
                                     "lr": 1e-3, "loggers": []})
    seen: list[tuple[list[str], list[str], list[float]]] = []
    justrl_reward = jtrl.reward_func(recipe.verifier, recipe=recipe, workers=1)

    def recorded(prompts, completions, **kwargs):
        values = justrl_reward(prompts, completions, **kwargs)
        seen.append(([jtrl.completion_text(c) for c in completions], list(kwargs["ground_truth"]), values))
        return values

    recorded.__name__ = justrl_reward.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = jtrl.grpo_config(recipe, output_dir=str(tmp_path / "trl"), logging_steps=1, save_strategy="no",
                                  disable_tqdm=True, dataloader_num_workers=0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = GRPOTrainer(model=model, args=config, reward_funcs=recorded,
                          train_dataset=jtrl.dataset(recipe, toy.make_problems("train")[:64]),
                          processing_class=AutoTokenizer.from_pretrained(model_dir))
    trainer.train()

    assert trainer.state.global_step == 4  # 2 recipe steps x 2 updates
    assert len(seen) == 2 and all(len(texts) == 32 for texts, _, _ in seen)
    for texts, truths, values in seen:
        assert values == [dapo_reward(t, g) for t, g in zip(texts, truths)]
    logged = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    assert logged, trainer.state.log_history
    means = [sum(v) / len(v) for _, _, v in seen]
    assert all(any(math.isclose(value, mean, abs_tol=1e-6) for mean in means) for value in logged)
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
