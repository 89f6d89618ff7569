"""The JustRL release's own validation sets, shipped with justrl (``release:AIME24`` and so on).

The release validated during training on ``train/data/{AIME24,AIME25,AMC23}/test.json`` of its
repository (github.com/thunlp/JustRL, commit cf444e99), turned into verl parquet by its
``train/data/preprocess.py``: data source = the folder name, the user message = the ``prompt``
field (the boxed suffix appended by its dataset code), ground truth = ``str(answer)``. These rows
are not those of the evaluation parquet files: AIME24's ground truths keep leading zeros (``025``)
and 12 of its prompt texts are worded differently. The three files are copied here byte for byte
(``justrl/data/files/release_val/NAME/test.json``); ``release:NAME`` names them in ``val_data``.
"""

from __future__ import annotations

from pathlib import Path

from justrl.data import problems as problems_mod
from justrl.data.problems import Problem
from justrl.errors import ProblemDataError

PREFIX = "release:"
VAL_SETS = ("AIME24", "AIME25", "AMC23")
"""The release's validation sets (its launch script's TEST_DATASET), in its order."""
MATH_VERIFY_SOURCES = ("lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval", *VAL_SETS)
"""Data sources the release's reward router (``verl/utils/reward_score/__init__.py``) graded with
Math-Verify (0/1); ``math_dapo`` went to the strict DAPO check."""

_DIR = Path(__file__).parent / "files" / "release_val"


def is_release_name(source: str) -> bool:
    return source.startswith(PREFIX)


def val_file(source: str) -> Path:
    """The shipped file of ``release:NAME`` (``NAME`` alone is accepted too)."""
    name = source[len(PREFIX):] if is_release_name(source) else source
    if name not in VAL_SETS:
        raise ProblemDataError(
            f"{source}: the release's validation sets are {', '.join(PREFIX + n for n in VAL_SETS)}"
        )
    return _DIR / name / "test.json"


def load_val(source: str) -> list[Problem]:
    """The release's rows of ``release:NAME``, in file order, none dropped (data source = NAME)."""
    return problems_mod.load(val_file(source), dedupe=False)
