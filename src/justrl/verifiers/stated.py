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
5. Without a box, before rule 3: the conclusion (:func:`concluding_answer`) -- the last sentence
   with a value, when it concludes ("So ... Maria has $12 left.", "Therefore ... 240 km.",
   "The answer is ...", "**Answer:** 15", "#### 15") or marks its value in bold; its last group
   of values, several joined by commas/"and" read as the list they form, currency and units
   dropped. A sentence that rejects the value it tried ("but this is not a solution") leaves no
   answer. Markdown emphasis and a stray backslash before digits (``\\boxed{\\12}``) are
   removed first (:func:`clean_markup`).
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
    if _RETRACTION.search(trailer) or _REJECTED.search(trailer) or _NEXT_SENTENCE.search(trailer) or not content:
        return None
    return content


# --- Rule 5: the conclusion of a response without a box -------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![\w*\\^_])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRAY_BACKSLASH = re.compile(r"(?<!\\)\\(?=\d)")
_CHAT_TOKEN = re.compile(r"<\|[^|<>]{1,40}\|>\w*")
_CURRENCY = re.compile(r"(?<![\\$\w])\\?\$(?=\d[\d,]*(?:\.\d+)?(?:\s+[A-Za-z]|\s*$|[.,;:!?)](?!\d)))")
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?])|(?<=[.!?]\$\$)|(?<=[.!?]\\\]))\s+(?=[^a-z\s])|\n+")
_NUM = (
    r"-?(?:\\[dt]?frac\{[^{}]{1,20}\}\{[^{}]{1,20}\}|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?)"
    r"(?:\s*(?:\\%|%|percent\b))?"
)
_SPAN_ITEM = r"\$[^$]+\$|\\\(.+?\\\)"
_ASSIGN = r"[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=\s*"
_ITEM = rf"(?:{_ASSIGN})?(?:{_SPAN_ITEM}|{_NUM})"
_VALUE_GROUP = re.compile(rf"(?<![\w.\\^_{{}}]){_ITEM}(?:\s*,\s*(?:and\s+|or\s+)?{_ITEM}|\s+(?:and|or)\s+{_ITEM})*(?!\d|[.,]\d)")
_ONE_ITEM = re.compile(rf"({_ASSIGN})?({_SPAN_ITEM}|{_NUM})")
_CONCLUDES = re.compile(
    r"^\W*(?:so(?! far)|therefore|thus|hence|finally|overall|altogether|consequently|in (?:total|all|conclusion|summary))\b"
    r"|\b(?:the (?:final |correct )?answer|final answer|answer\s*:|in (?:total|all)\b|altogether\b)"
    r"|^\W*####",
    re.IGNORECASE,
)
_INTRODUCES = re.compile(r"(?:answer(?: is)?|:)\s*$", re.IGNORECASE)  # "**Final Answer**" / "... is:" on its own line
_REJECTED = re.compile(
    r"\b(?:not (?:a |the |an )?(?:solution|valid|possible|allowed|an integer|integer|positive)|"
    r"(?:does|do|did)(?: not|n't) (?:work|satisfy|hold)|contradict\w*|impossible|invalid|reject\w*|discard\w*|"
    r"(?:is|are)n't (?:a |the )?(?:solution|valid|possible)|"
    r"(?:not able|unable) to (?:finish|solve|complete|determine)|can(?:not|'t) (?:finish|solve|determine))\b",
    re.IGNORECASE,
)  # a value tried and then rejected, or a response that gives up, is no answer
_STATES_RESULT = re.compile(
    r"^\W*(?:the|their|his|her|its|our|this|each)\b.{0,160}?"
    r"\b(?:is|are|was|were|will be|would be|equals?|comes? to|totals?)\b",
    re.IGNORECASE,
)  # "The value of x is 4.", "The sum of their ages will be 25 + 15 = 40": a result stated
_SHORT_TRAILER = re.compile(r"\s*(?P<percent>percent\b|pct\b)?(?:\s*[A-Za-z\u00b2\u00b3/]+){0,3}\s*[.!]?\s*")
_FINISHED = re.compile(r"[.!?$)\]}%\d*]\s*$")
_CONTINUES = re.compile(r"\s*(?:and|or|but|so|which|where|since|because|then|while)\b", re.IGNORECASE)
CONCLUSION_SENTENCES = 3  # the conclusion is looked for in the response's last three sentences
CONCLUSION_CHARS = 1200  # ... within its last 1200 characters (a conclusion is short; keeps it cheap)


def clean_markup(text: str) -> str:
    """Markdown bold/italics and chat tokens removed, a stray backslash before digits dropped
    (``\\12`` -> ``12``); a LaTeX line break ``\\\\`` is kept."""
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _ITALIC.sub(r"\1", text)
    return _CHAT_TOKEN.sub(" ", _STRAY_BACKSLASH.sub("", text)).replace("\u2212", "-")


def _without_currency(sentence: str) -> str:
    """Currency signs before amounts dropped (``$12 left`` -> ``12 left``), math spans kept."""
    unescaped = len(re.findall(r"(?<!\\)\$", sentence))
    if unescaped % 2 == 0 and not re.search(r"\$\d[\d,.]*\s+[A-Za-z]", sentence):
        return sentence.replace("\\$", "")  # the dollar signs pair up: math spans
    return _CURRENCY.sub("", sentence)


def _answer_of_group(group: str) -> str:
    """A value group as one answer: its items (currency sign and ``x =`` dropped when there are
    several) joined by ", "; a math span's own ``a + b = c`` read as its result ``c``."""
    items = []
    for m in _ONE_ITEM.finditer(group):
        assign, value = m.group(1) or "", m.group(2)
        if value.startswith("$") or value.startswith("\\("):
            value = value[1:-1] if value.startswith("$") else value[2:-2]
            value = value.strip()
            lhs, eq, rhs = value.rpartition("=")
            relation = re.search(r"[<>!:]|\\(?:[lg]eq?|neq?)\b", lhs) is not None or lhs.rstrip()[-1:] in "!<>="
            if eq and not relation and not re.fullmatch(r"\s*[A-Za-z](?:_\{?\w{1,3}\}?)?\s*", lhs):
                value = rhs.strip()
        items.append(value if len(items) or not assign else assign + value)
    if len(items) > 1 and items[0].count("=") == 1 and _ONE_ITEM.match(items[0]):
        items[0] = items[0].split("=", 1)[1].strip()
    return ", ".join(items)


def concluding_answer(tail: str) -> str | None:
    """The answer a response without a box states in its conclusion (rule 5), else ``None``.

    The last sentences are read from the end: closing words with no value ("I hope it is
    correct.") are skipped; the last sentence with a value must conclude -- open with so /
    therefore / thus / hence / in total..., say "the answer is" / "Answer:" / "Final answer",
    ``####``, or follow a "Final Answer" line -- state a result ("The value of x is 4.", "The
    sum of their ages will be 25 + 15 = 40": a subject, is/are/will be..., the value at the end
    but for a unit), or mark its value in bold. Its last group of
    values is the answer (several joined by commas or "and" as the list they form; currency
    signs and units dropped). A sentence that rejects what it found ("but this is not a
    solution", "contradiction") or a value sentence that does not conclude is no answer: a
    number in passing is not one.
    """
    sentences = [s.strip() for s in _SENTENCE_BREAK.split(tail[-CONCLUSION_CHARS:].strip()) if s and s.strip()]
    recent = sentences[-CONCLUSION_SENTENCES:]
    for index in range(len(recent) - 1, -1, -1):
        raw = recent[index]
        sentence = _without_currency(clean_markup(raw))
        if _REJECTED.search(sentence) or _RETRACTION.search(sentence):
            return None
        for bold in _BOLD.finditer(raw):
            marked = _without_currency(clean_markup(bold.group(1) or bold.group(2))).strip().rstrip(".")
            if _VALUE_GROUP.fullmatch(marked):
                return _answer_of_group(marked)
        groups = list(_VALUE_GROUP.finditer(sentence))
        if not groups:
            continue
        introduced = index > 0 and _INTRODUCES.search(clean_markup(recent[index - 1])) is not None
        last = groups[-1]
        trailer = _SHORT_TRAILER.fullmatch(sentence, last.end())
        unfinished = index == len(recent) - 1 and _FINISHED.search(sentence) is None
        if unfinished and (trailer is None or _CONTINUES.match(sentence, last.end())):
            return None  # cut off mid-sentence ("... = 60^\\circ$ and the tr"): never concluded
        states_result = trailer is not None and _STATES_RESULT.search(sentence) is not None
        if _CONCLUDES.search(sentence) is None and not introduced and not states_result:
            return None
        answer = _answer_of_group(last.group(0))
        if trailer is not None and trailer.group("percent") and "%" not in answer:
            answer += "\\%"  # "$28$ percent"
        return answer
    return None


def rejects_its_value(tail: str) -> bool:
    """Whether the response's last sentences reject the value they tried ("if x = 6 then y = 7,
    but this is not a solution")."""
    sentences = [s for s in _SENTENCE_BREAK.split(clean_markup(tail[-CONCLUSION_CHARS:]).strip()) if s.strip()]
    return any(_REJECTED.search(s) for s in sentences[-2:])
