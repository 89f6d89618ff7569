"""Which part of a response is its stated answer: every rule of ``lenient``'s extraction, here.

The rules, in the order Math-Verify ranks candidates (``tests/verifiers/test_stated.py`` shows
each on a case):

1. The last ``\\boxed{}`` (or ``\\fbox{}``) of the response's tail. Boxes right before it that are
   parts of the same answer -- separated only by commas, "and"/"or", spacing, math delimiters,
   ``\\text{and}``/``\\text{ for part (a) and }`` or a label such as ``y_2 =`` -- are joined into
   the set/tuple they form
   (``\\boxed{(1,2)}`` and ``\\boxed{(2,1)}`` state ``(1,2), (2,1)``).
2. A box the response later retracts ("Wait, that is wrong", "I made a mistake") is no answer,
   and nothing before it is taken instead ("wait" alone retracts nothing: models check right
   answers too).
3. Without a box: an "answer is"/"Answer:" statement (Math-Verify's anchored extraction, in
   :class:`justrl.verifiers.lenient.Lenient`), else the final math span (``$..$``, ``$$..$$``,
   ``\\[..\\]``, ``\\(..\\)``) when it closes the response: only a few words, no digits and no
   other math after it ("Therefore $x \\geq 5$ is the solution."). A percent sign or word right
   after that span belongs to it.
4. A number in prose, or a math span followed by more reasoning, is a mention, not an answer.
"""

from __future__ import annotations

import re

from justrl.verifiers.boxed import BOXED, FBOX, closing_brace

UNCLOSED = "\\boxed{"  # sentinel: the last box never closes (compared by identity)
RETRACTED = "\\boxed{retracted}"  # sentinel: the last box is taken back later (by identity)

_BOX_OPENER = re.compile(r"\\boxed\{|\\fbox\{")
_JOINER = re.compile(
    r"(?:\s|,|;|\.|\\quad|\\qquad|\\[,;:! ]|\$|\\\(|\\\)|\\\[|\\\]|\band\b|\bor\b"
    r"|\\(?:text|mathrm)\{[\s,;]*(?:(?:for )?part \(?[a-z0-9]\)?[\s,;]*)?(?:and|or)?[\s,;]*\}"
    r"|[A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?\s*=)*"
)
_RETRACTION = re.compile(
    r"\b(?:mistake|incorrect|wrong|miscalculat\w*|is not right|isn't right|not correct)\b", re.IGNORECASE
)  # words that take an answer back; "wait" alone does not (models check correct answers too)
_PHRASE_TO_BOX = re.compile(r"[^$\\]{0,80}?(?:\$\$?|\\\[|\\\()?\s*")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.DOTALL)
_PERCENT_AFTER = re.compile(r"\s*(?:\\%|%|percent(?:age)?\b|pct\b)")
FINAL_SPAN_TRAILER = 40  # at most this many characters of words after the final math span
_NEXT_SENTENCE = re.compile(r"[.!?:]\s+\w")


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every ``\\boxed{}``/``\\fbox{}`` whose braces close."""
    found = []
    for m in _BOX_OPENER.finditer(text):
        end = closing_brace(text, m.end(), depth=1)
        if end is not None:
            found.append((m.start(), end + 1, text[m.end() : end]))
    return found


def box_answer(tail: str) -> str | None:
    """The answer the boxes of ``tail`` state (rules 1-2), :data:`UNCLOSED`, :data:`RETRACTED`,
    or ``None`` when there is no box."""
    last_open = max(tail.rfind(BOXED), tail.rfind(FBOX))
    if last_open < 0:
        return None
    boxes = [b for b in _boxes(tail) if b[0] <= last_open]
    if not boxes or boxes[-1][0] != last_open:
        return UNCLOSED
    if _RETRACTION.search(tail, boxes[-1][1]):
        return RETRACTED
    parts = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        if box[1] > parts[0][0] or not _JOINER.fullmatch(tail, box[1], parts[0][0]):
            break
        parts.insert(0, box)
    return ", ".join(content.strip() for _, _, content in parts)


def decisive_box(tail: str) -> str | None:
    """:func:`box_answer` when Math-Verify's ranking surely picks the boxes as the answer, else
    ``None`` (let its ranking decide).

    They are decisive when no "final answer" phrase precedes them, or a single one leads straight
    into the last box ("**Final Answer** \\[ \\boxed{...", "final answer is $\\boxed{..."), which
    Math-Verify's phrase patterns then read as the same answer.
    """
    box = max(tail.rfind(BOXED), tail.rfind(FBOX))
    if box < 0:
        return None
    lowered = tail.lower()
    phrase = lowered.find("final answer")
    if phrase >= 0:
        if lowered.find("final answer", phrase + 1) >= 0 or phrase > box:
            return None
        if _PHRASE_TO_BOX.fullmatch(tail, phrase + len("final answer"), box) is None:
            return None
    return box_answer(tail)


def final_math_span(tail: str) -> str | None:
    """The final math span when it closes the response (rule 3), its percent sign kept."""
    spans = list(_MATH_SPAN.finditer(tail))
    if not spans:
        return None
    last = spans[-1]
    content = next(g for g in last.groups() if g is not None).strip()
    trailer = tail[last.end() :]
    percent = _PERCENT_AFTER.match(trailer)
    if percent is not None:
        content, trailer = content + "\\%", trailer[percent.end() :]
    if len(trailer.strip()) > FINAL_SPAN_TRAILER or re.search(r"\d|\$|\\\[|\\\(", trailer):
        return None
    if _RETRACTION.search(trailer) or _NEXT_SENTENCE.search(trailer) or not content:
        return None
    return content
