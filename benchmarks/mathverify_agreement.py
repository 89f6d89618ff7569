"""Agreement with Math-Verify's own expectations: an independent set for the verifiers.

Math-Verify's test suite (its ``tests/*.py`` at a pinned commit of the mirror) lists
``(gold, prediction, expected)`` triples its authors wrote for their library, not for justrl. This
script reads those files with ``git show`` (nothing of them is run or copied: the parametrize
lists are read as literals with :mod:`ast`), turns each triple into a graded item, and grades it
with ``lenient``, ``justrl-eval`` and Math-Verify itself:

- ground truth: the gold's one math span (``$28\\%$`` -> ``28\\%``) or its last ``\\boxed{}``,
  else the gold as written;
- response: a prediction that is one math span or a bare expression is boxed (``$x=11$`` ->
  ``\\boxed{x=11}``, ``28 pct`` -> ``\\boxed{28 pct}``); one written the way a response states its
  answer (a ``\\boxed{}``, math spans within text, prose) is kept as written;
- Math-Verify: ``verify(parse(gold), parse(response))``, its defaults.

Rows that test a non-default option of Math-Verify (``precision=2``, ``strict=False``,
``allow_set_relation_comp=False``) or that are not literals are skipped. Prints agreement rates,
then the disagreements by deliberate deviation (see :data:`DEVIATIONS`) and the rest.

    python benchmarks/mathverify_agreement.py [--mirror DIR] [--commit SHA] [--write-cases PATH]

``--write-cases`` writes the extracted items (with commit, path and deviation) as JSON lines: the
offline copy ``tests/verifiers/test_mathverify_agreement.py`` grades.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

MIRROR = Path("/work/.mirror/huggingface+Math-Verify/repo")
PINNED_COMMIT = "5d148cfaaf99214c2e4ffb4bc497ab042c592a7a"
TEST_FILES = (
    "tests/test_all.py",
    "tests/test_boxed.py",
    "tests/test_numina_cases.py",
    "tests/test_open_thoughts.py",
    "tests/test_strict.py",
    "tests/test_yujianll.py",
)
DEFAULT_OPTIONS = {"precision": 6, "strict": True, "allow_set_relation_comp": True}
_EXPECTED_NAMES = ("expected", "result")


@dataclass
class Case:
    source: str  # "<path>::<test function>#<row>" at ``commit``
    commit: str
    gold: str
    pred: str
    expected: bool
    ground_truth: str
    response: str
    deviation: str | None = None


def _git_show(mirror: Path, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _parametrize_rows(tree: ast.Module) -> list[tuple[str, list[str], int, tuple]]:
    """``(function, argnames, row index, literal row)`` of every ``pytest.mark.parametrize``."""
    rows = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
            if not isinstance(deco.args[1], ast.List):
                continue
            for i, element in enumerate(deco.args[1].elts):
                try:
                    row = ast.literal_eval(element)
                except ValueError:
                    continue  # an f-string or a computed value: not a literal
                rows.append((node.name, names, i, row))
    return rows


_ONE_SPAN = re.compile(r"\$\$(?P<a>[^$]*)\$\$|\$(?P<b>[^$]*)\$|\\\[(?P<c>.*)\\\]", re.DOTALL)


def _math_span(text: str) -> str | None:
    """The content of ``text`` when it is exactly one math span (``$..$``, ``$$..$$``, ``\\[..\\]``)."""
    m = _ONE_SPAN.fullmatch(text.strip())
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def ground_truth_of(gold: str) -> str:
    from justrl.verifiers.boxed import last_boxed_content

    span = _math_span(gold)
    if span is not None:
        return span.strip()
    if "\\boxed{" in gold:
        boxed = last_boxed_content(gold)
        if boxed is not None:
            return boxed.strip()
    return gold.strip()


_PROSE = re.compile(r"[A-Za-z]{2,}(?:\s+[A-Za-z]{2,}){2,}")


def response_of(pred: str) -> str:
    """The prediction as a response: as written when it states its answer as responses do."""
    span = _math_span(pred)
    if span is not None and "\\boxed" not in span:
        return f"\\boxed{{{span.strip()}}}"
    if any(mark in pred for mark in ("\\boxed", "\\fbox", "$", "\\[", "\\(")) or _PROSE.search(pred):
        return pred
    return f"\\boxed{{{pred.strip()}}}"


def extract_cases(mirror: Path = MIRROR, commit: str = PINNED_COMMIT) -> list[Case]:
    cases = []
    for path in TEST_FILES:
        tree = ast.parse(_git_show(mirror, commit, path))
        for function, names, i, row in _parametrize_rows(tree):
            values = dict(zip(names, row))
            expected_name = next((n for n in _EXPECTED_NAMES if n in values), None)
            if "gold" not in values or "pred" not in values or expected_name is None:
                continue
            options = {k: v for k, v in values.items() if k in DEFAULT_OPTIONS}
            if any(DEFAULT_OPTIONS[k] != v for k, v in options.items()):
                continue  # tests a non-default option of Math-Verify
            gold, pred = values["gold"], values["pred"]
            case = Case(
                source=f"{path}::{function}#{i}",
                commit=commit,
                gold=gold,
                pred=pred,
                expected=bool(values[expected_name]),
                ground_truth=ground_truth_of(gold),
                response=response_of(pred),
            )
            case.deviation = deviation_of(case)
            cases.append(case)
    return cases


def _decimal_comma(gold: str, pred: str) -> bool:
    """One side writes a decimal number with a comma, the other with a point."""
    comma, point = re.compile(r"\d,\d"), re.compile(r"\d\.\d")
    return any(
        bool(comma.search(a)) and a.count(",") == 1 and bool(point.search(b)) and not comma.search(b)
        for a, b in ((gold, pred), (pred, gold))
    )


# The deliberate deviations: Math-Verify's expectation, and why justrl grades otherwise.
_DEVIATION_RULES: list[tuple[str, str, Callable[[Case], bool]]] = [
    (
        "unanchored-number-in-prose",
        "Math-Verify takes the last number of any text; justrl takes a number only when it is "
        "stated as the answer (box, math span, 'answer is'), since a number in passing is not one",
        lambda c: c.expected and "$" not in c.pred and "\\boxed" not in c.pred and c.response == c.pred,
    ),
    (
        "decimal-comma",
        "Math-Verify reads 1,22 as 1.22; justrl reads a comma between digits as a thousands "
        "separator (groups of three) or a list, never a decimal point",
        lambda c: c.expected and _decimal_comma(c.gold, c.pred),
    ),
]
DEVIATIONS = {name: why for name, why, _ in _DEVIATION_RULES}


def deviation_of(case: Case) -> str | None:
    for name, _, applies in _DEVIATION_RULES:
        if applies(case):
            return name
    return None


def grade(cases: list[Case], timeout_s: float = 30.0) -> dict[str, list[bool | None]]:
    """Each grader's verdicts (``None``: undecided within the bound)."""
    from math_verify import parse, verify

    from justrl import verifiers

    responses = [c.response for c in cases]
    truths = [c.ground_truth for c in cases]
    out: dict[str, list[bool | None]] = {}
    for name in ("lenient", "justrl-eval"):
        verdicts = verifiers.verify_batch(name, responses, truths, timeout_s=timeout_s)
        out[name] = [None if v.undecided else v.correct for v in verdicts]
    out["math-verify"] = [bool(verify(parse(c.gold), parse(c.response))) for c in cases]
    return out


def agreement(cases: list[Case], verdicts: list[bool | None], *, counted: bool = True) -> float:
    pairs = [(c, v) for c, v in zip(cases, verdicts) if not counted or c.deviation is None]
    return sum(v == c.expected for c, v in pairs) / max(1, len(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=MIRROR)
    parser.add_argument("--commit", default=PINNED_COMMIT)
    parser.add_argument("--write-cases", type=Path)
    args = parser.parse_args()
    cases = extract_cases(args.mirror, args.commit)
    if args.write_cases:
        args.write_cases.write_text("".join(json.dumps(asdict(c)) + "\n" for c in cases), encoding="utf-8")
    results = grade(cases)
    n_dev = sum(c.deviation is not None for c in cases)
    print(f"{len(cases)} cases from Math-Verify {args.commit[:12]} ({n_dev} in documented deviations)")
    print(f"{'grader':<12} {'all':>7} {'apart from deviations':>22}")
    for name, verdicts in results.items():
        print(f"{name:<12} {agreement(cases, verdicts, counted=False):>7.1%} {agreement(cases, verdicts):>22.1%}")
    print("\ndeviations:")
    for name, why in DEVIATIONS.items():
        print(f"  {name} ({sum(c.deviation == name for c in cases)} cases): {why}")
    for name in ("lenient", "justrl-eval"):
        misses = [(c, v) for c, v in zip(cases, results[name]) if v != c.expected]
        print(f"\n{name}: {len(misses)} disagreements, by class:")
        by_class = Counter(
            (c.deviation or "undocumented", "undecided" if v is None else ("FP" if v else "FN")) for c, v in misses
        )
        for (cls, kind), n in sorted(by_class.items()):
            print(f"  {cls:<28} {kind:<9} {n}")
        for c, v in misses:
            if c.deviation is None:
                print(f"    {c.source}: truth {c.ground_truth[:50]!r} response {c.response[-70:]!r} -> {v}")


if __name__ == "__main__":
    main()
