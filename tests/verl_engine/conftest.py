"""Fixtures of the verl engine's tests: the paper's recipe planned on 4 x 8 GPUs, and its overrides
composed with the installed verl's config (composed once, it takes seconds)."""

from __future__ import annotations

import logging

import pytest

from justrl import recipe as R
from justrl.verl_engine import mapping, plan, rendering, validate


@pytest.fixture(scope="session")
def paper_plan(tmp_path_factory) -> tuple[R.Recipe, plan.VerlPlan]:
    recipe = R.load("justrl-deepseek-1.5b")
    return recipe, plan.make_plan(recipe, tmp_path_factory.mktemp("run"), nnodes=4, gpus_per_node=8)


@pytest.fixture(scope="session")
def paper_config(paper_plan):
    recipe, verl_plan = paper_plan
    return validate.validate_overrides(rendering.overrides(recipe, verl_plan),
                                       expected=mapping.verl_settings(recipe, verl_plan))


@pytest.fixture
def messages(caplog, monkeypatch):
    """justrl's log records of the test (after a CLI run, justrl's logger stops propagating to the
    root logger, where pytest's capture handler sits)."""
    monkeypatch.setattr(logging.getLogger("justrl"), "propagate", True)
    caplog.set_level(logging.INFO, logger="justrl")
    return caplog
