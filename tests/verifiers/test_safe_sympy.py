"""Safety: model text never reaches eval -- the sandboxed sympy evaluator, and every verifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl import verifiers
from justrl.verifiers import Verdict, get


@pytest.mark.parametrize(
    "text",
    [
        "(1)-(2)",
        "(sqrt(2))-(2**(1/2))",
        "(3pi)-(x)",
        "(5!)-(120)",
        "(2x y)-(ab)",
        "(7+3/4)-(31/4)",
        "(1.5e3)-(1500)",
        "(0.[3])-(1/3)",
        "(x<5)",
        "(1,2)",
        "(sqrt2)-(2)",
        "(e**(i*pi))",
        "2**-1",
        "-(-(3))",
    ],
)
def test_safe_parse_expr_builds_what_parse_expr_builds(text: str) -> None:
    from sympy.parsing import sympy_parser as sp

    transformations = sp.standard_transformations + (sp.implicit_multiplication_application,)
    assert verifiers.safe_parse_expr(text) == sp.parse_expr(text, transformations=transformations)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch {path}')",
        "open('{path}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        'sqrt(\'__import__("os").system("touch {path}")\')',
        "Integer(1).__class__",
        "(lambda: 1)()",
        "exec('x=1')",
        "eval('1')",
        "S('1+1')",
        "sympify('1')",
        "Symbol('x', commutative=False)",
        "[x for x in (1, 2)]",
    ],
)
def test_safe_parse_expr_refuses_code(text: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    with pytest.raises((verifiers.UnsafeExpression, SyntaxError, NameError, TypeError)):
        verifiers.safe_parse_expr(text.format(path=target))
    assert not target.exists()


def _payload_responses(payload: str) -> list[tuple[str, str]]:
    """(response, ground truth) pairs with ``payload`` everywhere a model (or a data file) can put text."""
    return [
        (f"\\boxed{{{payload}}}", "5"),
        (f"The answer is $\\boxed{{{payload}}}$", payload),
        (f"{payload}\n\nSo the answer is \\boxed{{5}}", "5"),
        (f"\\boxed{{5}} {payload}", "5"),
        (f"Answer: {payload}", "5"),
        (f"The final answer is ${payload}$. I hope it is correct.", "5"),
        (f"\\boxed{{\\text{{{payload}}}}}", f"\\text{{{payload}}}"),
        (f"\\boxed{{x = {payload}}}", f"\\boxed{{{payload}}}"),
        (f"\\boxed{{({payload}, {payload})}}", "(1, 2)"),
        ("\\boxed{5}", payload),
        (f"\\fbox{{{payload}}}", "5"),
        (payload, payload),
    ]


def test_payloads_never_run(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    payloads = [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w').write('x')",
        f"exec(\"open('{target}', 'w')\")",
        f'sqrt(\'__import__("os").system("touch {target}")\')',
    ]
    pairs = [pair for payload in payloads for pair in _payload_responses(payload)]
    responses, truths = [r for r, _ in pairs], [t for _, t in pairs]
    for name in verifiers.known_verifiers():
        batch = verifiers.verify_batch(name, responses, truths, timeout_s=5.0)
        single = [get(name, timeout_s=5.0)(r, t) for r, t in pairs[:12]]
        assert all(isinstance(v, Verdict) for v in batch + single)
        assert not any(v.reason.startswith("error") for v in batch), [v.reason for v in batch]
    assert not target.exists()
