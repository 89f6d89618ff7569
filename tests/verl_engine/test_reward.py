"""The reward adapter verl calls (``pkg://justrl.verl_reward``), loaded by verl's own loader from the
launcher's composed config, and run through verl's DAPO reward manager."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from justrl import recipe as R
from justrl.verl_engine import make_plan, overrides, validate_overrides
from justrl.verl_engine import reward as verl_reward


@pytest.fixture(scope="module")
def paper_config(tmp_path_factory):
    """The paper's overrides composed with the installed verl's config (its reward section)."""
    recipe = R.load("justrl-deepseek-1.5b")
    return validate_overrides(overrides(recipe, make_plan(recipe, tmp_path_factory.mktemp("run"))))


def test_reward_adapter_loads_through_verls_loader(paper_config) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    score = get_custom_reward_fn(paper_config)
    assert score is not None
    good = score(data_source="math_dapo", solution_str="so 2+2 is \\boxed{4}", ground_truth="4", extra_info={})
    assert good == {"score": 1.0, "acc": 1.0, "pred": "4"}
    bad = score(data_source="math_dapo", solution_str="\\boxed{5}", ground_truth="4", extra_info={})
    assert bad == {"score": -1.0, "acc": 0.0, "pred": "5"}
    none = score(data_source="x", solution_str="no box", ground_truth="4", extra_info=None)
    assert none["score"] == -1.0 and none["pred"] == ""


def test_validation_sources_are_graded_as_the_releases_router_did(paper_config) -> None:
    """AIME24/AIME25/AMC23 go to Math-Verify, scored 1/0 (the release's math_verify branch); the
    strict check would refuse both of these right answers."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    score = get_custom_reward_fn(paper_config)
    leading_zero = score(data_source="AIME24", solution_str="Hence \\boxed{25}.", ground_truth="025")
    assert leading_zero == {"score": 1.0, "acc": 1.0, "pred": "25"}
    unboxed = score(data_source="AMC23", solution_str="The answer is $\\frac{3}{4}$", ground_truth="\\frac34")
    assert unboxed["acc"] == 1.0
    wrong = score(data_source="AIME25", solution_str="\\boxed{71}", ground_truth="70")
    assert wrong == {"score": 0.0, "acc": 0.0, "pred": "71"}
    strict = score(data_source="math_dapo", solution_str="Hence \\boxed{25}.", ground_truth="025")
    assert strict["score"] == -1.0  # the training reward stays the strict check
    today = verl_reward.compute_score("AIME24", "Hence \\boxed{25}.", "025", verifier="dapo-strict",
                                      val_verifier="dapo-strict")
    assert today["acc"] == 0.0  # val_verifier=dapo-strict: justrl's former validation grading


def test_reward_adapter_by_file_path_with_recipe_rewards(tmp_path) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": verl_reward.__file__, "name": "compute_score",
        "reward_kwargs": {"verifier": "dapo-strict", "reward_correct": 2.0, "reward_incorrect": 0.0}}}})
    score = get_custom_reward_fn(config)
    assert score(data_source="d", solution_str="\\boxed{7}", ground_truth="7")["score"] == 2.0
    assert score(data_source="d", solution_str="\\boxed{8}", ground_truth="7")["score"] == 0.0


def test_reward_adapter_chooses_the_verifier_by_name(monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown verifier"):
        verl_reward.compute_score("d", "\\boxed{1}", "1", verifier="no-such-verifier")
    monkeypatch.setenv(verl_reward.VERIFIER_ENV, "no-such-verifier")
    with pytest.raises(ValueError, match="no-such-verifier"):
        verl_reward.compute_score("d", "\\boxed{1}", "1")
    assert verl_reward.compute_score("d", "\\boxed{1}", "1", verifier="dapo-strict")["score"] == 1.0


def _byte_tokenizer():
    """A byte-level tokenizer built locally (no downloads): decodes any text exactly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({"<|user|>": len(vocab), "<|assistant|>": len(vocab) + 1, "<|end|>": len(vocab) + 2})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|end|>", pad_token="<|end|>",
                                   additional_special_tokens=["<|user|>", "<|assistant|>"])


def test_reward_through_verls_dapo_reward_manager(paper_config) -> None:
    """The whole path verl takes: its loader, its DAPO reward manager, a decoded response."""
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = _byte_tokenizer()
    manager = load_reward_manager(paper_config, tokenizer)
    assert type(manager).__name__ == "DAPORewardManager"
    prompt = tokenizer.encode("<|user|>2+2?<|end|><|assistant|>")
    scores = []
    for source, text in (("math_dapo", "It is \\boxed{4}."), ("math_dapo", "It is \\boxed{5}."),
                         ("AIME24", "It is \\boxed{4}."), ("AIME24", "It is \\boxed{5}.")):
        response = tokenizer.encode(text) + [tokenizer.pad_token_id] * 3
        ids = torch.tensor([prompt + response])
        mask = torch.tensor([[1] * (len(prompt) + len(response) - 3) + [0] * 3])
        data = DataProto.from_dict(
            tensors={"prompts": ids[:, :len(prompt)], "responses": ids[:, len(prompt):], "attention_mask": mask},
            non_tensors={"data_source": np.array([source], dtype=object),
                         "reward_model": np.array([{"ground_truth": "4", "style": "rule"}], dtype=object),
                         "extra_info": np.array([{"index": "AIME24-0"}], dtype=object)},
        )
        scores.append(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])
    assert scores == [1.0, -1.0, 1.0, 0.0]  # training: strict +1/-1; validation sets: Math-Verify 1/0
