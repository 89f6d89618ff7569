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


_SPAN = re.compile(r"\$\$.+?\$\$|\$[^$]+?\$|\\\[.+?\\\]|\\\(.+?\\\)", re.DOTALL)


def _number_in_prose(case: Case) -> bool:
    """No box, and the response's last number lies outside its math spans."""
    if "\\boxed" in case.response:
        return False
    spans = list(_SPAN.finditer(case.response))
    after = case.response[spans[-1].end() :] if spans else case.response
    return bool(re.search(r"\d", after))


def _boxed(case: Case) -> str:
    from justrl.verifiers.boxed import last_boxed_content

    return (last_boxed_content(case.response) or "").strip()


def _list_containing_truth(case: Case) -> bool:
    items = [x.strip() for x in _boxed(case).split(",")]
    return len(items) > 1 and case.ground_truth.strip() in items


def _equation_side(case: Case) -> bool:
    sides = case.ground_truth.split("=")
    return len(sides) == 2 and "=" not in _boxed(case) and sides[1].replace(" ", "") == _boxed(case).replace(" ", "")


ALL = ("lenient", "justrl-eval")
# The deliberate deviations: (name, why, the graders it concerns, which cases).
_DEVIATION_RULES: list[tuple[str, str, tuple[str, ...], Callable[[Case], bool]]] = [
    (
        "number-in-prose",
        "Math-Verify takes the last number of any text; justrl takes a number only when it is "
        "stated as the answer (a box, the final math span, 'answer is'): a number in passing is not one",
        ALL,
        lambda c: c.expected and _number_in_prose(c),
    ),
    (
        "decimal-comma",
        "Math-Verify reads 1,22 as 1.22; justrl reads a comma between digits as a thousands "
        "separator (groups of three) or a list, never as a decimal point",
        ALL,
        lambda c: c.expected and _decimal_comma(c.gold, c.pred),
    ),
    (
        "list-for-one-value",
        "Math-Verify accepts a list that contains the gold value (\\boxed{1,2} for 2); justrl grades "
        "the list the response states, so listing candidates is not answering",
        ALL,
        lambda c: c.expected and _list_containing_truth(c),
    ),
    (
        "rounded-decimal-of-exact-answer",
        "Math-Verify accepts 0.0833333333333333 for 1/12 (6-digit rounding); justrl compares "
        "numbers exactly, so a rounded decimal of an exact answer is wrong",
        ALL,
        lambda c: c.expected
        and bool(re.fullmatch(r"-?\d*\.\d{4,}", _boxed(c)))
        and ("\\frac" in c.ground_truth or "\\sqrt" in c.ground_truth),
    ),
    (
        "inline-math-across-lines",
        "the case expects Math-Verify's LaTeX-only extraction, which refuses an inline span split "
        "over lines (Answer $ \\n 9 \\n $); its expression extraction, on by default, and justrl "
        "read the answer",
        ALL,
        lambda c: not c.expected and bool(re.search(r"(?<!\$)(?:\$|\\\()[ ]*\n.*\n[ ]*(?:\$|\\\))", c.pred)),
    ),
    (
        "wrong-expectation",
        "the case expects 1 + 1/e to equal 1 - 1/e (tests/test_yujianll.py); they differ",
        ALL,
        lambda c: c.expected and "1 - \\frac{1}{\\mathrm{e}}" in c.gold and "1 + " in c.pred,
    ),
    (
        "release-rule-equation-side",
        "the release's rule reads an equation by its right-hand side (7 = 11a+c as 11a+c), and "
        "justrl-eval keeps the release's acceptances outside the classes lenient refutes exactly",
        ("justrl-eval",),
        lambda c: not c.expected and _equation_side(c),
    ),
]
DEVIATIONS = {name: why for name, why, _, _ in _DEVIATION_RULES}
DEVIATION_GRADERS = {name: graders for name, _, graders, _ in _DEVIATION_RULES}


def deviation_of(case: Case) -> str | None:
    for name, _, _, applies in _DEVIATION_RULES:
        if applies(case):
            return name
    return None


def counts_for(case: Case, grader: str) -> bool:
    """Whether ``case`` counts in ``grader``'s agreement (no deviation of its applies)."""
    return case.deviation is None or grader not in DEVIATION_GRADERS.get(case.deviation, ALL)


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


def agreement(cases: list[Case], verdicts: list[bool | None], grader: str | None = None) -> float:
    """Share of ``cases`` where ``verdicts`` are Math-Verify's expectations; with ``grader``, apart
    from the deviations documented for it."""
    pairs = [(c, v) for c, v in zip(cases, verdicts) if grader is None or counts_for(c, grader)]
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
        apart = agreement(cases, verdicts, name if name in ALL else None)
        print(f"{name:<12} {agreement(cases, verdicts):>7.1%} {apart:>22.1%}")
    print("\ndeviations:")
    for name, why in DEVIATIONS.items():
        graders = ", ".join(DEVIATION_GRADERS[name])
        print(f"  {name} ({sum(c.deviation == name for c in cases)} cases; {graders}): {why}")
    for name in ("lenient", "justrl-eval"):
        misses = [(c, v) for c, v in zip(cases, results[name]) if v != c.expected]
        print(f"\n{name}: {len(misses)} disagreements, by class:")
        by_class = Counter(
            (c.deviation if not counts_for(c, name) else "undocumented", "undecided" if v is None else ("FP" if v else "FN")) for c, v in misses
        )
        for (cls, kind), n in sorted(by_class.items()):
            print(f"  {cls:<28} {kind:<9} {n}")
        for c, v in misses:
            if counts_for(c, name):
                print(f"    {c.source}: truth {c.ground_truth[:50]!r} response {c.response[-70:]!r} -> {v}")


if __name__ == "__main__":
    main()
