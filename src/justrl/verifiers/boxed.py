"""Finding ``\\boxed{...}`` answers: brace scanning shared by the verifiers.

Every verifier reads the answer from the last box of a response; they differ in which box counts
(``\\boxed`` only, or ``\\fbox`` too) and how much of the response they look at, not in how braces
are matched, which lives here once.
"""

from __future__ import annotations

BOXED = "\\boxed{"
FBOX = "\\fbox{"


def closing_brace(text: str, start: int, depth: int = 0) -> int | None:
    """Index of the ``}`` that brings the brace depth from ``depth`` (at ``start``) back to zero,
    or ``None`` when the braces never close."""
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def last_boxed_content(text: str, opener: str = BOXED) -> str | None:
    """Content of the last ``opener`` (``\\boxed{``) if its braces balance, else ``None``.

    The last occurrence is the only candidate: when its braces never close there is no answer
    (as in verl's ``last_boxed_only_string``).
    """
    start = text.rfind(opener)
    if start < 0:
        return None
    body = start + len(opener)
    end = closing_brace(text, body, depth=1)
    return None if end is None else text[body:end]


def last_box(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` or ``\\fbox{}`` whose braces balance."""
    opener = BOXED if text.rfind(BOXED) >= text.rfind(FBOX) else FBOX
    return last_boxed_content(text, opener)


def brace_depth(text: str) -> int:
    """The deepest brace nesting in ``text`` (unbalanced closing braces are not errors)."""
    depth = deepest = 0
    for ch in text:
        if ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
    return deepest
