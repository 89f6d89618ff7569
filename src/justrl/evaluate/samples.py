"""Kill-safe, resumable sample files: how a resumed evaluation stays exact.

An evaluation may run for days and be killed at any moment (Ctrl-C, SIGKILL, a lost node). Run
again with the same arguments, it must end with exactly the samples an uninterrupted run would have
written: every (problem, seed) pair once, none twice, none from another evaluation. Four things make
that so:

1. **The same plan.** The pairs and their prompts are a pure function of the settings
   (:mod:`justrl.evaluate.plan`: seeds drawn from ``(seed, task)``, file names from the sampling
   settings), so a rerun asks for the same pairs, written to the same files.
2. **No mixing.** :func:`check_resumable` refuses an output folder whose recorded evaluation
   (``eval_config.json``) has other weights (by hash, not path), sampling settings or data; and
   one process at a time writes to a folder (:class:`justrl.io.FolderLock`, taken by the run).
3. **Lines that are whole or absent.** A :class:`SampleFile` is append-only JSONL, one line per
   pair, each written with one unbuffered ``write`` on a file opened for appending, as soon as its
   sample is generated. On opening, a last line cut short by a kill is dropped (a complete one that
   only lacks its newline is completed); every complete line marks its pair as done.
4. **Only what is missing.** :meth:`SampleFile.missing` leaves out the pairs already there, and
   :meth:`SampleFile.append` refuses a pair that is, so nothing is ever written twice. Each sample
   draws from its own seeded random stream (``justrl.generate.hf``), so a pair generated after a
   resume is drawn exactly as it would have been without the interruption.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from justrl.errors import EvalError
from justrl.evaluate.config import CONFIG_FILE, EvalConfig

RESUME_KEYS = ("prompt", "seed", "n", "temperature", "top_p", "max_tokens", "backend", "dtype")
"""Settings that change the samples: they must match the recorded ones for a rerun to continue an
output folder (``limit`` and ``benchmarks`` only choose which samples, so they may change)."""


class _Keyed(Protocol):
    @property
    def key(self) -> tuple[int, int]: ...


Request = TypeVar("Request", bound=_Keyed)


def read_record(out_dir: Path) -> dict[str, Any]:
    """The recorded evaluation of an output folder (``eval_config.json``); {} where there is none."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise EvalError(f"{path}: unreadable ({exc}); it records what the folder's samples are, "
                        "so the folder cannot be resumed safely. Use another --out.") from exc
    return record if isinstance(record, dict) else {}


def check_resumable(out_dir: Path, record: dict[str, Any], config: EvalConfig, weights: dict[str, Any],
                    data: dict[str, str]) -> None:
    """Refuse to mix samples of other weights, settings or benchmark data into an output folder.

    ``record`` is the folder's :func:`read_record`; ``weights`` the model's fingerprint
    (:func:`justrl.generate.model_files.fingerprint`); ``data`` each benchmark's file checksum. The same
    weights under another path are the same model; every difference found is listed.
    """
    if not record:
        return
    previous = record.get("settings", {})
    differences = [f"{key}={previous[key]!r} there, {getattr(config, key)!r} now"
                   for key in RESUME_KEYS if key in previous and previous[key] != getattr(config, key)]
    recorded_weights = record.get("weights", {}).get("sha256")
    if recorded_weights and recorded_weights != weights.get("sha256"):
        differences.append(f"other weights (the folder evaluated {previous.get('model')!r}, whose weight "
                           f"files hashed differently from {config.model!r}'s now)")
    elif not recorded_weights and "model" in previous and previous["model"] != config.model:
        differences.append(f"model={previous['model']!r} there, {config.model!r} now")
    recorded_data = {b.get("name"): b.get("sha256") for b in _benchmark_entries(record)}
    differences += [f"{name}'s data file changed" for name, sha in data.items()
                    if recorded_data.get(name) not in (None, sha)]
    if differences:
        raise EvalError(f"{out_dir} holds another evaluation ({'; '.join(differences)}); resuming would mix "
                        "the two. Use another --out, or the recorded settings.")


def _benchmark_entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded benchmarks: a list of ``{"name", ...}`` (a dict by name in folders written by earlier versions)."""
    entries = record.get("benchmarks", [])
    if isinstance(entries, dict):
        return [{"name": k, **v} for k, v in entries.items()]
    return [e for e in entries if isinstance(e, dict)]


class SampleFile:
    """One benchmark's JSONL output: append-only, one line per (example_id, seed), kill-safe.

    Opening it reads what is there: a last line cut short by a crash is dropped (or, if it is
    complete JSON that only lacks its newline, completed); every complete line marks its
    (example_id, seed) as done. :meth:`append` writes a line in one system call and refuses a
    pair that is already there.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: set[tuple[int, int]] = set()
        self.dropped_bytes = 0  # a partial last line removed on opening
        self.malformed_lines: list[int] = []
        self.duplicate_lines = 0  # pairs found twice in the file (never written by us)
        self._load()
        self._handle = self.path.open("ab", buffering=0)

    def _load(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            try:
                json.loads(tail)
            except ValueError:
                with self.path.open("r+b") as handle:
                    handle.truncate(cut)
                self.dropped_bytes = len(tail)
                data = data[:cut]
            else:
                with self.path.open("ab") as handle:
                    handle.write(b"\n")
        for line_no, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = (int(rec["example_id"]), int(rec["seed"]))
                if not isinstance(rec.get("response"), str):
                    raise ValueError("no response")
            except (ValueError, KeyError, TypeError):
                self.malformed_lines.append(line_no)
                continue
            if key in self.done:
                self.duplicate_lines += 1
            self.done.add(key)

    def missing(self, requests: Iterable[Request]) -> list[Request]:
        """The requests whose (example_id, seed) pair has no line yet, in their order."""
        return [r for r in requests if r.key not in self.done]

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record (False, and nothing written, if its pair is already there)."""
        key = (int(record["example_id"]), int(record["seed"]))
        if key in self.done:
            return False
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = self._handle.write(view)
            view = view[written:]
        self.done.add(key)
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SampleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """The well-formed lines of an output file."""
    out = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "example_id" in rec and "seed" in rec:
                out.append(rec)
    return out
