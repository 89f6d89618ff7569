"""Prompt + max_tokens against the model's context (issue 14, case 5: vLLM silently stops at the
context with "length", and one prompt longer than the context aborts the whole generate call)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from justrl.errors import ContextLengthError, JustrlError
from justrl.generate.context_window import check_budget, context_of, model_context


def test_context_is_the_smallest_bound_the_config_states():
    assert context_of(SimpleNamespace(max_position_embeddings=4096)) == 4096
    assert context_of(SimpleNamespace(max_position_embeddings=131072, seq_length=32768)) == 32768
    assert context_of(SimpleNamespace(text_config=SimpleNamespace(n_positions=2048))) == 2048
    assert context_of(SimpleNamespace(hidden_size=8)) is None


def test_model_context_reads_the_folder_or_takes_the_engines_limit(tiny_model):
    assert model_context(str(tiny_model)) == 128  # the toy config's max_position_embeddings
    assert model_context(str(tiny_model), max_model_len=64) == 64


def test_a_budget_that_fits_is_kept():
    budget = check_budget({"AIME24/0": 90, "AIME24/1": 120}, 31_744, 32_768)
    assert (budget.max_tokens, budget.effective_max_tokens, budget.truncated) == (31_744, 31_744, False)
    assert budget.longest_prompt == 120 and budget.longest_prompt_label == "AIME24/1"
    assert check_budget({"x": 10}, 100, None).effective_max_tokens == 100  # context unknown


def test_a_budget_past_the_context_is_refused_naming_the_longest_prompt():
    with pytest.raises(ContextLengthError) as info:
        check_budget({"MATH-500/3": 200, "MATH-500/7": 350}, 31_744, 4096)
    message = str(info.value)
    assert isinstance(info.value, JustrlError) and "\n" not in message
    assert "MATH-500/7 (350 tokens)" in message and "max_tokens=3746" in message
    assert "allow_truncated_budget=true" in message


def test_a_truncated_budget_when_allowed_records_what_the_longest_prompt_gets():
    budget = check_budget({"a": 200, "b": 350}, 31_744, 4096, allow_truncated=True)
    assert budget.truncated and budget.effective_max_tokens == 4096 - 350
    assert budget.to_dict()["effective_max_tokens"] == 3746


def test_a_prompt_as_long_as_the_context_is_refused_even_when_truncation_is_allowed():
    with pytest.raises(ContextLengthError, match="b has 4096 tokens"):
        check_budget({"a": 10, "b": 4096}, 8, 4096, allow_truncated=True)
