"""Math problems: one ``Problem`` type and loaders for the formats users have.

``load(path_or_name)`` accepts
- verl-style parquet (a chat ``prompt`` list whose first message is the problem, and
  ``reward_model.ground_truth``), as the JustRL release ships AIME24, MATH-500, ...;
- plain parquet or JSONL with a problem column (``problem``/``question``/``prompt``) and an answer
  column (``answer``/``ground_truth``/``final_answer``/``target``), as HMMT25, BRUMO25, CMIMC25;
- MATH-style files whose only answer is a worked ``solution``, but only when asked
  (``answer_from="solution"``): the ground truth is then the solution's last ``\\boxed{}``. Taken
  as it is, a whole worked solution would be a ground truth no response ever matches;
- a directory holding ``test.parquet`` (a benchmark folder);
- a Hugging Face dataset name (``BytedTsinghua-SIA/DAPO-Math-17k``), through ``datasets``.

A missing, empty or malformed file, or one without a recognisable answer column, raises
:class:`ProblemDataError` naming the file (and the row and field, or the columns found).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from justrl.errors import ProblemDataError
from justrl.recipe import ANSWER_FROM

PROBLEM_KEYS = ("problem", "question", "prompt", "input")
ANSWER_KEYS = ("answer", "ground_truth", "final_answer", "target")
SOLUTION_KEY = "solution"
"""Where a plain row's ground truth comes from: an answer column, or the last \\boxed{} of ``solution``."""
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")

# DAPO-Math-17k wraps every problem in an instruction to end with "Answer: $Answer". ``prompt`` holds
# the bare problem; the text as published is kept in ``meta[SOURCE_PROMPT]`` for the ``release``
# prompt format (the JustRL release trained on it as published, suffix appended).
SOURCE_PROMPT = "source_prompt"
_DAPO_HEAD = "Solve the following math problem step by step. The last line of your response should be of the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
_DAPO_TAIL = '\n\nRemember to put your answer on its own line after "Answer:".'


@dataclass(frozen=True)
class Problem:
    """One math problem with a verifiable answer."""

    id: str
    """Stable identifier, unique within its source (e.g. ``AIME24-0``)."""
    prompt: str
    """The problem statement as given to the model, without the recipe's suffix."""
    ground_truth: str
    """The reference answer, as stored in the source (may be ``\\boxed{..}``-wrapped)."""
    source: str
    """Where it came from: a benchmark or data set name."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Anything else the source carried (problem type, split, ...)."""


def strip_dapo_wrapper(text: str) -> str:
    """The bare problem of a DAPO-Math-17k prompt (unchanged when there is no wrapper)."""
    if text.startswith(_DAPO_HEAD):
        text = text[len(_DAPO_HEAD):]
    if text.endswith(_DAPO_TAIL):
        text = text[: -len(_DAPO_TAIL)]
    return text


def unwrap_boxed(answer: str) -> str:
    """``\\boxed{204}`` -> ``204`` (AIME24's ground truths are stored boxed, and the strict reward
    compares bare answers); anything that is not one whole ``\\boxed{...}`` is returned as is."""
    text = answer.strip()
    opener = "\\boxed{"
    if not (text.startswith(opener) and text.endswith("}")):
        return answer
    depth = 0
    for i, ch in enumerate(text[len(opener) - 1 :], start=len(opener) - 1):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return answer  # e.g. "\boxed{1}, \boxed{2}"
    return text[len(opener) : -1]


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None if there is none."""
    opener = "\\boxed{"
    start = text.rfind(opener)
    while start != -1:
        depth, begin = 0, start + len(opener) - 1
        for i in range(begin, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[begin + 1 : i]
        start = text.rfind(opener, 0, start)  # unbalanced: try the one before
    return None


def answer_text(answer: Any, at: str) -> Any:
    """A non-text answer as the text a verifier compares: an integer as written; a float with an
    integer value as that integer (pandas stores the column ``4`` as ``4.0``, and the strict reward
    of ``\\boxed{4}`` against ``"4.0"`` would be -1); other floats by ``repr`` (``0.5``). A bool,
    NaN or infinity is refused (no answer means true, an empty cell is no answer). Other types are
    returned as they are (and refused by the caller)."""
    if isinstance(answer, bool):
        raise ProblemDataError(f"{at}: answer field is a boolean ({answer}), not an answer")
    if isinstance(answer, int):
        return str(answer)
    if isinstance(answer, float):
        if not math.isfinite(answer):
            raise ProblemDataError(f"{at}: answer field is {answer}, not an answer")
        return str(int(answer)) if answer.is_integer() else repr(answer)
    return answer


def build_prompt(problem: Problem, suffix: str, prompt_format: str = "clean") -> str:
    """The user message for a problem: its text followed by the recipe's suffix.

    ``clean``: the bare problem. ``release``: the text as the source published it (DAPO-Math-17k's
    instructions kept), as the release's dataset code (``use_boxed_suffix_prompt``) built it.
    """
    if prompt_format not in ("release", "clean"):
        raise ValueError(f"prompt_format must be 'release' or 'clean' (got {prompt_format!r})")
    text = problem.meta.get(SOURCE_PROMPT, problem.prompt) if prompt_format == "release" else problem.prompt
    return text + suffix


def chat_messages(problem: Problem, suffix: str, prompt_format: str = "clean") -> list[dict[str, str]]:
    """The problem as one user turn, ready for ``tokenizer.apply_chat_template``."""
    return [{"role": "user", "content": build_prompt(problem, suffix, prompt_format)}]


def load(path_or_name: str | Path, *, dedupe: bool = True, limit: int | None = None,
         answer_from: str = "answer") -> list[Problem]:
    """Problems from a file, a benchmark directory or a Hugging Face dataset name.

    Args:
        path_or_name: ``.parquet``/``.jsonl``/``.json`` file, a folder with ``test.parquet``, or a hub
            dataset name (``owner/name``, optionally ``owner/name:split``).
        dedupe: drop repeated (prompt, answer) pairs, keeping the first (DAPO-Math-17k's published
            parquet repeats each prompt many times).
        limit: keep at most this many problems.
        answer_from: ``answer`` (an answer column; the default) or ``solution`` (the last
            ``\\boxed{}`` of a MATH-style worked ``solution`` column). Rows in verl's schema carry
            their ground truth explicitly and ignore it.
    """
    if answer_from not in ANSWER_FROM:
        raise ProblemDataError(f"answer_from must be one of {', '.join(ANSWER_FROM)} (got {answer_from!r})")
    path = Path(path_or_name)
    if path.is_dir():
        candidates = [path / "test.parquet", path / "train.parquet", path / "test.jsonl"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ProblemDataError(f"{path}: no test.parquet, train.parquet or test.jsonl in this folder")
        path = found
    if path.is_file():
        rows = list(_read_rows(path))
        _check_columns(_columns(rows), str(path), answer_from)
        source = path.parent.name if path.stem in ("test", "train") else path.stem
        problems = list(_problems_from_rows(rows, source, str(path), answer_from))
    elif path.suffix.lower() not in DATA_SUFFIXES and _looks_like_hub_name(str(path_or_name)):
        problems = _load_hub(str(path_or_name), answer_from)
    else:
        raise ProblemDataError(f"{path_or_name}: no such file or folder, and not a dataset name (owner/name)")
    if dedupe:
        problems = _dedupe(problems)
    if limit is not None:
        problems = problems[:limit]
    if not problems:
        raise ProblemDataError(f"{path_or_name}: holds no problems")
    return problems


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every field any row has, in first-seen order."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _check_columns(columns: list[str], where: str, answer_from: str) -> None:
    """Refuse a file whose columns cannot give problems and ground truths, naming what it has."""
    if not columns or ("reward_model" in columns and "prompt" in columns):
        return  # empty (reported as such), or verl's schema (explicit ground truths)
    found = f"columns found: {', '.join(columns)}"
    if not any(k in columns for k in PROBLEM_KEYS):
        raise ProblemDataError(f"{where}: no problem column (expected one of {', '.join(PROBLEM_KEYS)}); {found}")
    if answer_from == "solution":
        if SOLUTION_KEY not in columns:
            raise ProblemDataError(f"{where}: answer_from=solution but there is no '{SOLUTION_KEY}' column; {found}")
        return
    if not any(k in columns for k in ANSWER_KEYS):
        hint = (f"; '{SOLUTION_KEY}' holds worked solutions, not answers: pass answer_from=solution to use "
                "the last \\boxed{} of each" if SOLUTION_KEY in columns else "")
        raise ProblemDataError(
            f"{where}: no answer column (expected one of {', '.join(ANSWER_KEYS)}); {found}{hint}")


def _looks_like_hub_name(name: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+(:[\w.-]+)?", name)) and not name.startswith(("./", "../"))


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise ProblemDataError(f"{path}: unsupported file type {suffix!r} (use .parquet, .jsonl or .json)")
    if path.stat().st_size == 0:
        raise ProblemDataError(f"{path}: empty file")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ProblemDataError(f"{path}: not a readable parquet file ({reason})") from exc
        yield from table.to_pylist()
        return
    try:
        yield from _read_json_rows(path, suffix)
    except UnicodeDecodeError as exc:
        raise ProblemDataError(f"{path}: not UTF-8 text (byte {exc.start} of a line)") from exc


def _read_json_rows(path: Path, suffix: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        if suffix == ".json" and handle.read(1) == "[":
            handle.seek(0)
            try:
                items = json.load(handle)
            except json.JSONDecodeError as exc:
                raise ProblemDataError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ProblemDataError(f"{path}: item {i}: expected a JSON object")
                yield item
            return
        handle.seek(0)
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ProblemDataError(f"{path}: line {line_no}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ProblemDataError(f"{path}: line {line_no}: expected a JSON object")
            yield row


def _problems_from_rows(rows: Iterable[dict[str, Any]], source: str, where: str,
                        answer_from: str = "answer") -> Iterator[Problem]:
    for row_no, row in enumerate(rows):
        yield problem_from_row(row, row_no, source, where, answer_from=answer_from)


def problem_from_row(row: dict[str, Any], row_no: int, source: str, where: str = "<data>", *,
                     answer_from: str = "answer") -> Problem:
    """One row of either schema as a Problem; errors name ``where``, the row and the field."""
    at = f"{where}: row {row_no}"
    if "reward_model" in row and isinstance(row.get("prompt"), (list, tuple)):
        messages = row["prompt"]
        if not messages or not isinstance(messages[0], dict) or "content" not in messages[0]:
            raise ProblemDataError(f"{at}: field 'prompt' must be a list of chat messages with 'content'")
        user = [m for m in messages if isinstance(m, dict) and m.get("role", "user") == "user"]
        text = (user or messages)[0]["content"]
        reward = row["reward_model"]
        if not isinstance(reward, dict) or reward.get("ground_truth") in (None, ""):
            raise ProblemDataError(f"{at}: field 'reward_model.ground_truth' is missing or empty")
        answer = reward["ground_truth"]
        extra = row.get("extra_info") or {}
        pid = extra.get("index") if isinstance(extra, dict) else None
        src = row.get("data_source") or source
        meta = {k: v for k, v in row.items() if k not in ("prompt", "reward_model")}
    else:
        text = next((row[k] for k in PROBLEM_KEYS if isinstance(row.get(k), str)), None)
        if text is None:
            raise ProblemDataError(f"{at}: no problem text (expected one of the fields {', '.join(PROBLEM_KEYS)})")
        answer = _plain_answer(row, at, answer_from)
        pid = next((row[k] for k in ("id", "problem_idx", "idx", "index", "unique_id") if k in row), None)
        src = source
        meta = {k: v for k, v in row.items() if k not in (*PROBLEM_KEYS, *ANSWER_KEYS, SOLUTION_KEY)}
    if not isinstance(text, str) or not text.strip():
        raise ProblemDataError(f"{at}: field 'prompt' is empty")
    answer = answer_text(answer, at)
    if not isinstance(answer, str):
        raise ProblemDataError(f"{at}: answer field has type {type(answer).__name__}, expected text")
    bare = strip_dapo_wrapper(text)
    if bare != text:
        meta[SOURCE_PROMPT] = text
    return Problem(
        id=f"{src}-{row_no}" if pid is None else str(pid) if str(pid).startswith(str(src)) else f"{src}-{pid}",
        prompt=bare,
        ground_truth=answer,
        source=str(src),
        meta=meta,
    )


def _plain_answer(row: dict[str, Any], at: str, answer_from: str) -> Any:
    """A plain row's ground truth: its answer field, or the boxed answer of its worked solution."""
    if answer_from == "solution":
        solution = row.get(SOLUTION_KEY)
        if not isinstance(solution, str) or not solution.strip():
            raise ProblemDataError(f"{at}: field '{SOLUTION_KEY}' is missing or empty")
        boxed = last_boxed(solution)
        if boxed is None or not boxed.strip():
            raise ProblemDataError(f"{at}: field '{SOLUTION_KEY}' has no \\boxed{{}} answer")
        return boxed.strip()
    answer = next((row[k] for k in ANSWER_KEYS if row.get(k) not in (None, "")), None)
    if answer is None:
        raise ProblemDataError(f"{at}: no answer (expected one of the fields {', '.join(ANSWER_KEYS)})")
    return answer


def _load_hub(name: str, answer_from: str = "answer") -> list[Problem]:
    """A dataset from the Hugging Face hub (needs network, or a populated HF cache)."""
    repo, _, split = name.partition(":")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets comes with the verl extra
        raise ProblemDataError(f"{name}: loading hub datasets needs `pip install datasets`") from exc
    try:
        data = datasets.load_dataset(repo, split=split or "train")
    except Exception as exc:
        raise ProblemDataError(
            f"{name}: could not load from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline? Download it once, or pass a local parquet/JSONL file instead."
        ) from exc
    _check_columns(list(data.column_names), name, answer_from)
    return list(_problems_from_rows(iter(data), repo.split("/")[-1], name, answer_from))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in problems:
        key = (p.prompt, p.ground_truth)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def save_jsonl(problems: Iterable[Problem], path: str | Path) -> None:
    """Write problems as plain JSONL (``id``, ``problem``, ``answer``, ``source``)."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for p in problems:
            handle.write(json.dumps({"id": p.id, "problem": p.prompt, "answer": p.ground_truth, "source": p.source}) + "\n")
