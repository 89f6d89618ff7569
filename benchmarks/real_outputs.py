"""The graders on real model outputs with human correctness labels (MR-GSM8K).

The set: MR-GSM8K (github.com/dvlab-research/MR-GSM8K, commit
3f666d60dd5f2fe31d619c528076bac54f4a13b7), the rows in its ``eval_results/gpt4-grading/*.json``
files (the full ``dataset/MR-GSM8K.json`` is over the mirror's 4 MiB limit). Each row is a real
MetaMath-7B solution to a GSM8K problem ("original") or its reversed form ("reversed": solve for
the unknown x given the answer), split into steps, with ``model_output_answer_correctness``
labelled by the dataset's human annotators. Rows of type "POT" (a Python program as the solution)
are left out: no grader here runs code. Rows are deduplicated by ``uuid``.

- response: the steps joined by newlines, their ``Step k:`` labels removed;
- gold: ``ground_truth_answer`` when it is a number, else the last "The value of x is N" or
  ``#### N`` of ``ground_truth_solution``;
- Math-Verify: ``verify(parse(gold), parse(response))``, its default call.

The data stays outside the repository; fetch it yourself and pass the folder (or files):

    python benchmarks/real_outputs.py --data /work/data20 [--errors] [--closing-prose]

``--closing-prose`` is a probe of unboxed conclusions on the same real text: each response's
closing marker lines (``#### N``, "The answer is: N") are removed, so what is graded is the
model's own last sentences ("Therefore, Josh starts on stage with 4 balls."); only the rows whose
remaining last value-bearing line states the same number as the removed marker are kept, so the
human label still applies.

It prints, per grader, accuracy against the human label and the false-positive rate (share of
the wrong responses graded correct) and false-negative rate (share of the correct ones graded
wrong); ``--errors`` also lists each disagreement's uuid.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

SOURCE = "github.com/dvlab-research/MR-GSM8K eval_results/gpt4-grading/*.json"
COMMIT = "3f666d60dd5f2fe31d619c528076bac54f4a13b7"
GRADERS = ("math-verify", "justrl-eval", "lenient", "release-rule", "dapo-strict")
_STEP_LABEL = re.compile(r"^Step \d+:\s*")
_NUMBER = re.compile(r"-?[\d,]*\.?\d+")
_MARKER_LINE = re.compile(r"^(?:####\s*|The answer is:\s*)(-?[\d,]*\.?\d+)\s*$")
_GOLD_IN_SOLUTION = re.compile(r"(?:The value of x is|####)\s*\$?(-?[\d,]*\.?\d+)")


@dataclass(frozen=True)
class Row:
    uuid: str
    question_type: str
    response: str
    gold: str
    correct: bool  # the human label


def gold_of(record: dict) -> str | None:
    answer = str(record.get("ground_truth_answer", "")).strip()
    if _NUMBER.fullmatch(answer):
        return answer
    found = _GOLD_IN_SOLUTION.findall(str(record.get("ground_truth_solution", "")))
    return found[-1] if found else None


def closing_prose(row: Row) -> Row | None:
    """``row`` with its closing marker lines removed, or ``None`` when its last remaining line
    does not end on the marker's number (the label might not apply)."""
    lines = row.response.split("\n")
    stated = None
    while lines and (m := _MARKER_LINE.match(lines[-1].strip())):
        stated = stated or m.group(1)
        lines.pop()
    if stated is None or not lines:
        return None
    numbers = _NUMBER.findall(lines[-1])
    if not numbers or numbers[-1].replace(",", "") != stated.replace(",", ""):
        return None
    return Row(row.uuid, row.question_type, "\n".join(lines), row.gold, row.correct)


def load(paths: list[Path]) -> tuple[list[Row], int]:
    """The labelled rows of the MR-GSM8K files under ``paths`` and how many were skipped."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.json")))
    if not files:
        raise SystemExit(f"real_outputs: no .json files at {', '.join(map(str, paths))}")
    seen: dict[str, Row] = {}
    skipped = 0
    for path in files:
        for i, record in enumerate(json.loads(path.read_text())):
            if "model_output_steps" not in record or "uuid" not in record:
                raise SystemExit(f"{path}: row {i}: not an MR-GSM8K row (no model_output_steps/uuid)")
            if record["uuid"] in seen:
                continue
            gold = gold_of(record)
            label = record.get("model_output_answer_correctness")
            if record.get("question_type") == "POT" or gold is None or label not in ("correct", "wrong"):
                skipped += 1
                continue
            response = "\n".join(_STEP_LABEL.sub("", s) for s in record["model_output_steps"])
            seen[record["uuid"]] = Row(record["uuid"], record["question_type"], response, gold, label == "correct")
    return list(seen.values()), skipped


def grade(rows: list[Row]) -> dict[str, list[bool]]:
    from math_verify import parse, verify

    from justrl.verifiers.batch import verify_batch

    responses, golds = [r.response for r in rows], [r.gold for r in rows]
    out = {"math-verify": [bool(verify(parse(r.gold), parse(r.response))) for r in rows]}
    for name in GRADERS[1:]:
        out[name] = [v.correct for v in verify_batch(name, responses, golds, workers=1)]
    return out


def rates(labels: list[bool], verdicts: list[bool]) -> tuple[float, float, float]:
    n_pos = sum(labels) or 1
    n_neg = (len(labels) - sum(labels)) or 1
    accuracy = sum(a == b for a, b in zip(labels, verdicts)) / len(labels)
    fp = sum(v and not lab for lab, v in zip(labels, verdicts)) / n_neg
    fn = sum(lab and not v for lab, v in zip(labels, verdicts)) / n_pos
    return accuracy, fp, fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="MR-GSM8K .json files or folders")
    parser.add_argument("--errors", action="store_true", help="list each grader's disagreements")
    parser.add_argument("--closing-prose", action="store_true", help="grade the closing sentences, markers removed")
    args = parser.parse_args()
    rows, skipped = load(args.data)
    if args.closing_prose:
        probed = [closing_prose(r) for r in rows]
        skipped += sum(p is None for p in probed)
        rows = [p for p in probed if p is not None]
        print("probe: closing prose (marker lines removed)")
    labels = [r.correct for r in rows]
    print(f"source: {SOURCE} @ {COMMIT}")
    print(f"rows: {len(rows)} ({sum(labels)} labelled correct, {len(rows) - sum(labels)} wrong; {skipped} skipped)")
    results = grade(rows)
    print("| grader | accuracy | false positives | false negatives |")
    print("|---|---|---|---|")
    for name in GRADERS:
        accuracy, fp, fn = rates(labels, results[name])
        print(f"| {name} | {accuracy:.1%} | {fp:.1%} | {fn:.1%} |")
    if args.errors:
        for name in GRADERS:
            wrong = [r.uuid for r, v in zip(rows, results[name]) if v != r.correct]
            print(f"{name}: {len(wrong)} disagreements: {' '.join(wrong)}")


if __name__ == "__main__":
    main()
