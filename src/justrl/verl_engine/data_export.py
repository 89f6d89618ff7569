"""Problems written in verl's RL dataset schema (``justrl data export --format verl``).

One row per problem, the columns ``verl.utils.dataset.rl_dataset.RLHFDataset`` and verl's reward
managers read:

- ``data_source``: where the problem came from (verl groups validation metrics by it);
- ``prompt``: a chat list with one user turn, the problem followed by the recipe's suffix (the
  release's verl fork appended the suffix with a patch, ``+data.use_boxed_suffix_prompt``; with
  upstream verl it has to be in the data). With ``prompt_format="release"`` the problem is the
  row's text as published (DAPO-Math-17k's own instructions kept), exactly the user message the
  release's dataset code built; ``clean`` removes DAPO's instructions;
- ``ability``: ``math``;
- ``reward_model``: ``{"ground_truth": ..., "style": "rule"}``; a ground truth stored as
  ``\\boxed{204}`` (AIME24 in the release) is unwrapped to ``204``, since the strict training
  reward compares the boxed answer with the ground truth character for character;
- ``extra_info``: ``{"index": problem id, "split": "train" | "test"}``.

Sources are anything :func:`justrl.data.problems.load` reads (a parquet/JSONL file, a benchmark
folder, a hub dataset name such as ``BytedTsinghua-SIA/DAPO-Math-17k``; deduplicated only on
request, since the release trained on the published DAPO-Math-17k parquet with every prompt
repeated), a benchmark name (``AIME24``) found in ``--data-dir`` or the copy packaged with justrl,
one of the release's validation sets shipped with justrl (``release:AIME24``, see
:mod:`justrl.data.release_data`), or the CPU demo's task (``toy-arithmetic``; ``--split test`` gives its
held-out sums). A MATH-style file (a worked ``solution`` and no answer column) is
refused unless ``answer_from="solution"`` asks for its boxed answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl import io
from justrl.data import problems as problems_mod
from justrl.data import release_data, toy
from justrl.data.problems import Problem
from justrl.recipe import PROMPT_SUFFIX

ABILITY = "math"
REWARD_STYLE = "rule"
SPLITS = ("train", "test")


def _schema() -> Any:
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [
            ("data_source", text),
            ("prompt", pa.list_(pa.struct([("content", text), ("role", text)]))),
            ("ability", text),
            ("reward_model", pa.struct([("ground_truth", text), ("style", text)])),
            ("extra_info", pa.struct([("index", text), ("split", text)])),
        ]
    )


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    rows: int
    read: int
    """Problems in the source before deduplication."""


def verl_row(problem: Problem, suffix: str = PROMPT_SUFFIX, split: str = "train",
             prompt_format: str = "clean") -> dict[str, Any]:
    """One problem as a row of verl's RL dataset schema."""
    return {
        "data_source": problem.source,
        "prompt": [{"content": problems_mod.build_prompt(problem, suffix, prompt_format), "role": "user"}],
        "ability": ABILITY,
        "reward_model": {"ground_truth": problems_mod.unwrap_boxed(problem.ground_truth), "style": REWARD_STYLE},
        "extra_info": {"index": problem.id, "split": split},
    }


def load_source(source: str, *, data_dir: str | Path | None = None, dedupe: bool = True,
                limit: int | None = None, answer_from: str = "answer",
                split: str = "train") -> tuple[list[Problem], int]:
    """The problems of ``source`` (deduplicated when ``dedupe``) and how many the source held.

    ``source`` is a file or folder, a hub dataset name, ``release:NAME`` (the release's validation
    rows), or the name of one of the paper's benchmarks (looked up in ``data_dir``, else the copy
    packaged with justrl). ``answer_from`` as in :func:`justrl.data.problems.load` (``solution``:
    MATH-style files, the boxed answer). ``toy-arithmetic`` is the CPU demo's task, its ``split``
    (800 sums to train on, 200 held out).
    """
    if source == toy.TOY_SOURCE:
        found = toy.make_problems(split)
        kept = unique(found) if dedupe else found
        return (kept if limit is None else kept[:limit]), len(found)
    bench = None if release_data.is_release_name(source) else _benchmark_named(source)
    if release_data.is_release_name(source):
        found = release_data.load_val(source)
    elif bench is not None:
        from justrl.data import benchmarks

        found = benchmarks.load_problems(benchmarks.locate([bench], data_dir)[bench.name])
    else:
        found = problems_mod.load(source, dedupe=False, answer_from=answer_from)
    kept = unique(found) if dedupe else found
    return (kept if limit is None else kept[:limit]), len(found)


def _benchmark_named(source: str) -> Any:
    """The paper's benchmark called ``source`` (``AIME24``), or None for paths and hub names."""
    if Path(source).exists() or "/" in source:
        return None
    from justrl.data import benchmarks

    try:
        return benchmarks.get(source)
    except benchmarks.BenchmarkDataError:
        return None


def without_suffix(problem: Problem, suffix: str) -> Problem:
    """``problem`` without a trailing ``suffix``: re-exporting an export (whose prompts end with the
    suffix already) writes the suffix once, not twice."""
    if not suffix or not problem.prompt.endswith(suffix):
        return problem
    meta = dict(problem.meta)
    if isinstance(meta.get(problems_mod.SOURCE_PROMPT), str) and meta[problems_mod.SOURCE_PROMPT].endswith(suffix):
        meta[problems_mod.SOURCE_PROMPT] = meta[problems_mod.SOURCE_PROMPT][:-len(suffix)]
    return dataclasses.replace(problem, prompt=problem.prompt[:-len(suffix)], meta=meta)


def unique(problems: list[Problem]) -> list[Problem]:
    """First occurrence of every (problem text, answer) pair, in source order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.prompt, p.ground_truth) not in seen:
            seen.add((p.prompt, p.ground_truth))
            out.append(p)
    return out


def export_verl(problems: list[Problem], out: str | Path, *, suffix: str = PROMPT_SUFFIX,
                split: str = "train", prompt_format: str = "clean") -> Path:
    """Write ``problems`` as a verl RL parquet file at ``out`` (parent folders are created)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (got {split!r})")
    if not problems:
        raise problems_mod.ProblemDataError(f"{out}: nothing to export (no problems)")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([verl_row(p, suffix, split, prompt_format) for p in problems], schema=_schema())
    io.sweep_staging(path.parent, depth=0, only=path.name)  # what a killed export of it left
    tmp = io.staging_file(path)
    try:
        pq.write_table(table, tmp)
        tmp.replace(path)
    except BaseException:  # a full disk or a size limit: no staging file stays behind
        tmp.unlink(missing_ok=True)
        raise  # never leave a half-written file where the launcher looks for one
    return path


def export(source: str, out: str | Path, *, suffix: str = PROMPT_SUFFIX, split: str = "train",
           data_dir: str | Path | None = None, limit: int | None = None, dedupe: bool = True,
           prompt_format: str = "clean", answer_from: str = "answer") -> ExportResult:
    """Load ``source`` (deduplicated when ``dedupe``) and write it in verl's schema; see the module docstring."""
    if limit is not None and limit < 1:
        raise problems_mod.ProblemDataError(f"--limit must be a positive number of problems (got {limit})")
    if Path(out).suffix != ".parquet":
        raise problems_mod.ProblemDataError(f"{out}: the export is a Parquet file; name it *.parquet")
    if Path(source).exists() and Path(source).resolve() == Path(out).resolve():
        raise problems_mod.ProblemDataError(f"{out}: the export would overwrite its own source; choose "
                                            "another --out")
    kept, read = load_source(source, data_dir=data_dir, dedupe=dedupe, limit=limit, answer_from=answer_from,
                             split=split)
    kept = [without_suffix(p, suffix) for p in kept]
    path = export_verl(kept, out, suffix=suffix, split=split, prompt_format=prompt_format)
    return ExportResult(path=path, rows=len(kept), read=read)
