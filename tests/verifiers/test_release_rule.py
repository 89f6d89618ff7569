"""release-rule against the JustRL release's own grader (``evals/utils.py``), verdict for verdict.

The release's file is read from a git clone of it (a bare one will do): ``JUSTRL_RELEASE_REPO``,
else the mirror at ``/work/.mirror/thunlp+JustRL/repo``; the test is skipped without one.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import warnings
from types import ModuleType

import pytest

from justrl import verifiers


def _load_release_grader(tmp_path_factory) -> ModuleType:
    """The JustRL release's evals/utils.py from a local clone (JUSTRL_RELEASE_REPO), for parity."""
    repo = os.environ.get("JUSTRL_RELEASE_REPO", "/work/.mirror/thunlp+JustRL/repo")
    try:
        source = subprocess.run(
            ["git", "-C", repo, "show", "HEAD:evals/utils.py"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no clone of the JustRL release at {repo} (set JUSTRL_RELEASE_REPO)")
    path = tmp_path_factory.mktemp("release") / "release_utils.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("release_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # its regexes are written with invalid escape sequences
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        spec.loader.exec_module(module)
    return module


def test_release_rule_matches_the_release_grader_on_benchmark_answers(
    tmp_path_factory, ground_truths
) -> None:
    release = _load_release_grader(tmp_path_factory)
    rng = random.Random(7)
    sample = rng.sample(ground_truths, 80)
    responses, truths = [], []
    for gt in sample:
        bare = gt[7:-1] if gt.startswith("\\boxed{") else gt.strip("$")
        other = rng.choice(ground_truths)
        variants = [
            bare,
            bare.replace("\\frac", "\\dfrac"),
            bare.replace(" ", ""),
            f"x = {bare}",
            f"ab = {bare}",
            f"{bare} \\text{{ cm}}",
            f"{bare}^\\circ",
            f"\\text{{{bare}}}",
            other[7:-1] if other.startswith("\\boxed{") else other,
        ]
        for answer in variants:
            responses.append(f"Reasoning... so the answer is $\\boxed{{{answer}}}$.")
            truths.append(gt)
    ours = verifiers.verify_batch("release-rule", responses, truths, timeout_s=10.0)
    differ = [
        (t, r[-60:])
        for r, t, v in zip(responses, truths, ours)
        if v.correct != bool(release.grade_answer_verl(r, t))
    ]
    assert not differ, differ[:5]
    assert sum(v.correct for v in ours) > len(ours) // 2
