"""The nine benchmarks of the JustRL paper, as data: files, samples per problem, checksums, scores.

A benchmark is a row of :data:`BENCHMARKS`, not code (the lm-evaluation-harness habit). Its file
is ``NAME/test.parquet``, the layout of the JustRL repository's ``data/`` folder, in one of two
schemas that :func:`justrl.data.problems.load` reads (verl-style chat prompts for AIME24, AIME25, AMC23,
MATH-500, Minerva and Olympiad-Bench; plain ``problem``/``answer`` columns for HMMT25, BRUMO25 and
CMIMC25).

Files come, in this order of preference, from
- a local folder (``--data-dir DIR``): used as they are, a file that differs from the release is
  flagged in the report;
- the pinned download (``--data-dir download``): fetched once from the JustRL repository, at a
  pinned commit, into a cache (``$JUSTRL_CACHE`` or the OS cache folder) by ``pooch``, which checks
  each file's SHA-256 against the value pinned here; for updating, or a damaged installation;
- by default, the copy shipped inside the package (``justrl/data/files/benchmarks``, 380 KB with its
  ``SHA256SUMS``), so evaluation and the tests work offline; each file's SHA-256 is checked against
  the pinned value every time it is located.

:func:`published` returns the scores of the paper's tables (``data/files/published.csv``, shipped
inside the package, checksum-checked too), one row per model, grouped by base-model family.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from justrl.data import problems as problems_mod
from justrl.data.problems import Problem
from justrl.errors import BenchmarkDataError

# The commit of thunlp/JustRL that added data/ (the files have not changed since).
JUSTRL_DATA_REVISION = "b2de1c592e72106d7887db87310c7e6810593323"
DATA_URL = f"https://raw.githubusercontent.com/thunlp/JustRL/{JUSTRL_DATA_REVISION}/data"
DATA_URL_ENV = "JUSTRL_DATA_URL"  # another mirror of the same files (same layout, same checksums)
CACHE_ENV = "JUSTRL_CACHE"  # where downloaded files are kept
DOWNLOAD = "download"  # --data-dir download: the pinned download instead of the packaged copy
PACKAGED = "data/files/benchmarks"  # inside the justrl package: NAME/test.parquet and SHA256SUMS
PUBLISHED_CSV = "data/files/published.csv"
PUBLISHED_SHA256 = "073b5f9b2529daea280f9b99bee081d6c67443b805a332346cac4e17648478b5"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the paper's evaluation."""

    name: str
    """As the paper and the release's file names spell it (``MATH-500``)."""
    samples_per_problem: int
    """Samples drawn per problem in the paper (avg@N): 32 for the small competition sets, else 4."""
    problems: int
    """Rows of the released file."""
    sha256: str
    """Checksum of the released ``test.parquet``."""
    schema: str
    """``verl`` (chat ``prompt`` + ``reward_model.ground_truth``) or ``plain`` (``problem``, ``answer``)."""

    @property
    def folder(self) -> str:
        return self.name

    @property
    def relpath(self) -> str:
        """Where the file lies inside a data folder."""
        return f"{self.folder}/test.parquet"

    @property
    def task(self) -> str:
        """The name the release uses in output file names (``math-500_t0.7_...jsonl``)."""
        return self.name.lower()


# In the column order of the paper's tables.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("AIME24", 32, 30, "147a9f9031b37e9b12450dfd4f2050a1bece8b3550bb6b9907fa386b5fedf887", "verl"),
    Benchmark("AIME25", 32, 30, "9d2333e1dc8831284747dfa62b58d8b6a84a94090ee108d1dd101f8d20a38593", "verl"),
    Benchmark("AMC23", 32, 40, "01191828e1fe738a2d19c3379213a6e5c92b425e1f86d67323e7b8613efa5678", "verl"),
    Benchmark("MATH-500", 4, 500, "966193d8d22e279e0055016566f0879b929748c29cba018b5db52981a8d88cfa", "verl"),
    Benchmark("Minerva", 4, 272, "af8621984d495b22f9ddbc301b388163cdb4433031a589ea337dc953085d8f02", "verl"),
    Benchmark("Olympiad-Bench", 4, 674, "2cd97aee40853b19d77a545202907acd84e104498221c6934995ba97f46fde61", "verl"),
    Benchmark("HMMT25", 32, 30, "ccca64d248b89dc0765e40b893fe4ebeab242226a4336027d95d256886a3d5f2", "plain"),
    Benchmark("BRUMO25", 32, 30, "ef510deea34c5b6d165c06d020acede1c1031eb91d90336cb4d615d9e55ba391", "plain"),
    Benchmark("CMIMC25", 32, 40, "7f290e5564265e57b0fe91c72bde2f1a06ca147148b7787084c54a0354abfcce", "plain"),
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(b.name): b for b in BENCHMARKS}
_ALIASES = {"math": "MATH-500", "olympiad": "Olympiad-Bench", "olympiadbench": "Olympiad-Bench", "minervamath": "Minerva"}


def names() -> list[str]:
    return [b.name for b in BENCHMARKS]


def get(name: str) -> Benchmark:
    """A benchmark by name, ignoring case and punctuation (``math500``, ``olympiad-bench``)."""
    key = _key(name)
    key = _key(_ALIASES.get(key, name))
    try:
        return _BY_KEY[key]
    except KeyError:
        raise BenchmarkDataError(f"unknown benchmark {name!r}; known: {', '.join(names())}") from None


def select(spec: str | Sequence[str]) -> list[Benchmark]:
    """``"all"``, a comma-separated list or a sequence of names -> benchmarks in table order."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    items = [s.strip() for part in parts for s in part.split(",") if s.strip()]
    if not items or any(s.lower() == "all" for s in items):
        return list(BENCHMARKS)
    chosen = {get(s).name for s in items}
    return [b for b in BENCHMARKS if b.name in chosen]


# --------------------------------------------------------------------------------------------
# Files: a local folder, a verified download into a cache, or the packaged copy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkFile:
    """A located benchmark file and whether it is byte-identical to the released one."""

    benchmark: Benchmark
    path: Path
    sha256: str

    @property
    def is_release_file(self) -> bool:
        return self.sha256 == self.benchmark.sha256


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where downloaded benchmark files are kept: ``$JUSTRL_CACHE/benchmarks`` or the OS cache."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root) / "benchmarks"
    import pooch

    return Path(pooch.os_cache("justrl")) / "benchmarks"


def packaged_dir() -> Path:
    """The copy of the nine release files shipped inside the package (``NAME/test.parquet``)."""
    return Path(str(resources.files("justrl").joinpath(PACKAGED)))


def locate(
    selected: Sequence[Benchmark],
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    cache: str | Path | None = None,
    base_url: str | None = None,
) -> dict[str, BenchmarkFile]:
    """Find the file of every selected benchmark (see the module docstring for the three sources).

    With ``data_dir`` the files are read from ``data_dir/NAME/test.parquet``; a file whose checksum
    differs from the release is used all the same (the caller reports it). With ``download`` (or
    ``data_dir="download"``) each file is fetched from the JustRL repository into ``cache`` unless
    already there, and its SHA-256 checked. Otherwise the packaged copy is used, checksum-checked.
    Anything missing raises one :class:`BenchmarkDataError` saying where to put the files.
    """
    if data_dir is not None and str(data_dir) == DOWNLOAD:
        data_dir, download = None, True
    if data_dir is not None:
        return _local(selected, Path(data_dir).expanduser())
    if download:
        return _download(selected, cache, base_url)
    return _packaged(selected)


def _local(selected: Sequence[Benchmark], root: Path) -> dict[str, BenchmarkFile]:
    found: dict[str, BenchmarkFile] = {}
    missing: list[tuple[Benchmark, str]] = []
    for bench in selected:
        path = root / bench.relpath
        if path.is_file():
            found[bench.name] = BenchmarkFile(bench, path, sha256_of(path))
        else:
            missing.append((bench, "not found"))
    if missing:
        raise BenchmarkDataError(_missing_message(missing, root, local=True))
    return found


def _packaged(selected: Sequence[Benchmark]) -> dict[str, BenchmarkFile]:
    """The packaged files, each refused unless byte-identical to the release."""
    root = packaged_dir()
    found: dict[str, BenchmarkFile] = {}
    bad: list[str] = []
    for bench in selected:
        path = root / bench.relpath
        if not path.is_file():
            bad.append(f"{bench.name} (missing)")
            continue
        digest = sha256_of(path)
        if digest != bench.sha256:
            bad.append(f"{bench.name} (checksum {digest[:12]}..., expected {bench.sha256[:12]}...)")
        found[bench.name] = BenchmarkFile(bench, path, digest)
    if bad:
        raise BenchmarkDataError(
            f"the benchmark files packaged in {root} are damaged: {', '.join(bad)}. Reinstall justrl, "
            f"or pass --data-dir {DOWNLOAD} (the pinned download) or --data-dir DIR (a folder with NAME/test.parquet)."
        )
    return found


def _download(selected: Sequence[Benchmark], cache: str | Path | None, base_url: str | None) -> dict[str, BenchmarkFile]:
    import pooch

    found: dict[str, BenchmarkFile] = {}
    missing: list[tuple[Benchmark, str]] = []
    folder = Path(cache) if cache is not None else cache_dir()
    url = (base_url or os.environ.get(DATA_URL_ENV) or DATA_URL).rstrip("/")
    for bench in selected:
        try:
            path = pooch.retrieve(
                url=f"{url}/{bench.relpath}",
                known_hash=f"sha256:{bench.sha256}",
                fname="test.parquet",
                path=folder / bench.folder,
                progressbar=False,
            )
        except ValueError:  # pooch: the downloaded file's hash differs from the pinned one
            missing.append((bench, "checksum mismatch with the pinned release file"))
        except Exception as exc:  # network errors come as several types (requests, OSError, ...)
            missing.append((bench, f"download failed: {type(exc).__name__}"))
        else:
            found[bench.name] = BenchmarkFile(bench, Path(path), bench.sha256)
    if missing:
        raise BenchmarkDataError(_missing_message(missing, folder, local=False, url=url))
    return found


def _missing_message(missing: list[tuple[Benchmark, str]], root: Path, *, local: bool, url: str = "") -> str:
    what = ", ".join(f"{b.name} ({why})" for b, why in missing)
    example = root / missing[0][0].relpath
    where = (
        f"in --data-dir {root}" if local else f"in the download cache {root}, and downloading from {url} failed"
    )
    return (
        f"no benchmark data for {what} {where}. Put each file at DIR/NAME/test.parquet "
        f"(e.g. {example}), as in the JustRL repository's data/ folder "
        f"(https://github.com/thunlp/JustRL/tree/main/data), and pass --data-dir DIR"
        + ("" if local else f", or copy them into {root} (then no download is needed); "
           "without --data-dir the copy packaged with justrl is used")
        + "."
    )


def load_problems(file: BenchmarkFile, *, limit: int | None = None) -> list[Problem]:
    """The problems of a benchmark file in row order (the row index is the release's example_id).

    No deduplication: example ids are row numbers, as in the release. Problem text and answer
    are stripped of surrounding white space, as the release does before formatting the prompt.
    """
    rows = problems_mod.load(file.path, dedupe=False)
    if file.is_release_file and len(rows) != file.benchmark.problems:  # pragma: no cover - guarded by sha
        raise BenchmarkDataError(f"{file.path}: {len(rows)} rows, expected {file.benchmark.problems}")
    out = [
        Problem(
            id=f"{file.benchmark.name}-{row}",
            prompt=p.prompt.strip(),
            ground_truth=p.ground_truth.strip(),
            source=file.benchmark.name,
            meta={**p.meta, "example_id": row},
        )
        for row, p in enumerate(rows)
    ]
    return out if limit is None else out[:limit]


# --------------------------------------------------------------------------------------------
# Published results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedRow:
    """One model's row of the paper's tables (percent, avg@N)."""

    family: str
    model: str
    scores: dict[str, float | None] = field(compare=False)
    """Benchmark name -> score; ``None`` where nothing was published."""
    average: float | None

    def average_over(self, names_: Sequence[str]) -> float | None:
        """The published average when ``names_`` are all nine, else the mean of these columns."""
        if sorted(names_) == sorted(names()):
            return self.average
        values = [self.scores.get(n) for n in names_]
        if not values or any(v is None for v in values):
            return None
        return sum(values) / len(values)  # type: ignore[arg-type]


def published(family: str | None = None) -> list[PublishedRow]:
    """The published rows, in the paper's order; only those of ``family`` when given."""
    data = resources.files("justrl").joinpath(PUBLISHED_CSV).read_bytes()
    if hashlib.sha256(data).hexdigest() != PUBLISHED_SHA256:
        raise BenchmarkDataError(f"the packaged {PUBLISHED_CSV} differs from the paper's numbers (checksum); "
                                 "reinstall justrl")
    text = data.decode("utf-8")
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        scores = {b.name: (float(rec[b.name]) if rec.get(b.name) else None) for b in BENCHMARKS}
        avg = float(rec["avg"]) if rec.get("avg") else None
        rows.append(PublishedRow(rec["family"], rec["model"], scores, avg))
    return [r for r in rows if family is None or r.family == family]


def outside_interval(published: float, ci: tuple[float, float]) -> bool | None:
    """Whether a published score lies outside our confidence interval; ``None`` when the interval
    cannot tell: it has no width (one problem, or every problem scored alike, e.g. ``[0.0, 0.0]``),
    so the bootstrap saw no spread and "outside" would mark every published row as a difference."""
    low, high = ci
    if not high - low > 1e-9:
        return None
    return not low <= published <= high


def families() -> list[str]:
    return sorted({r.family for r in published()})


# Substrings of model names/paths -> family; first match wins (ProRL-V2 is published by NVIDIA as
# "Nemotron-Research-Reasoning-Qwen-1.5B" but is trained from the DeepSeek distill).
_FAMILY_HINTS: tuple[tuple[str, str], ...] = (
    ("nemotronresearchreasoning", "deepseek-1.5b"),
    ("prorl", "deepseek-1.5b"),
    ("brorl", "deepseek-1.5b"),
    ("deepscaler", "deepseek-1.5b"),
    ("deepseek", "deepseek-1.5b"),
    ("nemotron", "nemotron-1.5b"),
    ("openmath", "nemotron-1.5b"),
    ("questa", "nemotron-1.5b"),
)


def family_of(model: str) -> str | None:
    """The published family a model belongs to, guessed from its name; ``None`` if unknown."""
    key = _key(model)
    return next((fam for hint, fam in _FAMILY_HINTS if hint in key), None)
