"""Tests for justrl.evaluate.grading: release-format files in, grading_results.json out."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import pytest

from justrl.cli import main as cli_main
from justrl.evaluate import grading

AIME = "AIME24_t0.7_p0.9_n4-MNT1024.jsonl"
MATH = "MATH-500_t0.7_p0.9_n2-MNT1024.jsonl"

# (example_id, answer, responses): problem 0 always right, problem 1 half right (one answer only
# the lenient stage accepts, two without \boxed), problem 2 never right.
AIME_PROBLEMS = [
    (0, "5", ["So \\boxed{5}."] * 4),
    (
        1,
        "\\frac{1}{2}",
        ["We get \\boxed{0.5}", "The final answer is $\\frac{1}{2}$.", "\\boxed{3}", "I give up"],
    ),
    (2, "7", ["\\boxed{8}", "\\boxed{9}", "\\boxed{8}", "\\boxed{-7}"]),
]


def _line(example_id: int, answer: str, seed: int, response: str) -> str:
    record = {"example_id": example_id, "prompt": f"problem {example_id}", "answer": answer, "seed": seed,
              "response": response}  # fmt: skip
    return json.dumps(record)


@pytest.fixture
def gen_dir(tmp_path: Path) -> Path:
    lines = [
        _line(pid, gt, seed, r) for pid, gt, responses in AIME_PROBLEMS for seed, r in enumerate(responses)
    ]
    lines.insert(5, "{not json")  # line 6
    lines.insert(9, json.dumps({"example_id": 1, "answer": "1", "seed": 9}))  # line 10: no response
    lines.append(_line(0, "5", 0, "\\boxed{4}"))  # a repeated (example_id, seed): skipped
    (tmp_path / AIME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    math_lines = [
        _line(0, "\\{1,2\\}", 0, "\\boxed{\\{2,1\\}}"),
        _line(0, "\\{1,2\\}", 1, "\\boxed{\\{1,2\\}}"),
    ]
    (tmp_path / MATH).write_text("\n".join(math_lines) + "\n", encoding="utf-8")
    (tmp_path / "notes.jsonl").write_text('{"hello": 1}\n', encoding="utf-8")
    return tmp_path


def test_grade_dir_writes_the_release_fields(gen_dir: Path) -> None:
    report = grading.grade_dir(gen_dir)
    assert json.loads((gen_dir / grading.RESULTS_FILE).read_text()) == report
    assert set(report["files"]) == {AIME, MATH}
    r = report["files"][AIME]
    assert r["hyperparameters"] == {"temperature": "0.7", "top_p": "0.9", "n": "4", "max_tokens": "1024",
                                    "task_name": "AIME24"}  # fmt: skip
    assert r["mean_score"] == pytest.approx(0.5)
    assert r["best_score"] == pytest.approx(2 / 3)
    assert (r["solve_none"], r["solve_all"]) == (1, 1)
    assert r["pass@k"] == pytest.approx({"1": 0.5, "2": (1 + 5 / 6 + 0) / 3, "4": 2 / 3})
    assert r["format_error_rollouts"] == 2
    assert (r["problems"], r["responses"]) == (3, 12)
    assert r["per_problem"] == {"0": 1.0, "1": 0.5, "2": 0.0}
    responses = [resp for _, _, rs in AIME_PROBLEMS for resp in rs]
    assert r["avg_output_length"] == pytest.approx(sum(map(len, responses)) / 12)
    assert r["avg_output_length_unit"] == "characters"
    assert r["stages"] == {
        "release-rule": {"correct": 5, "incorrect": 0},
        "lenient": {"correct": 1, "incorrect": 6},
    }
    assert (r["judge_calls"], r["judge_calls_saved"]) == (0, 1)
    assert r["duplicate_lines"] == 1
    m = report["files"][MATH]
    assert m["mean_score"] == 1.0 and m["stages"]["lenient"]["correct"] == 1  # the release misses {2,1}
    assert report["grader"]["judge"] is None and "no model judge" in report["grader"]["note"]


def test_malformed_lines_are_reported_with_file_and_line_and_not_counted(gen_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="justrl")
    report = grading.grade_dir(gen_dir, write=False)
    assert len(report["malformed_lines"]) == 2
    assert report["malformed_lines"][0].startswith(f"{AIME}:6: not JSON")
    assert report["malformed_lines"][1] == f"{AIME}:10: missing 'response'"
    assert report["files"][AIME]["malformed_lines"] == report["malformed_lines"]
    assert not (gen_dir / grading.RESULTS_FILE).exists()
    logged = [r.getMessage() for r in caplog.records if r.name == "justrl.evaluate.grading"]
    assert logged == [*(f"malformed line skipped: {m}" for m in report["malformed_lines"]),
                      "skipping notes.jsonl: not named {task}_t{T}_p{P}_n{N}-MNT{M}.jsonl"]


def test_release_rule_alone_reproduces_the_release_rule_stage(gen_dir: Path) -> None:
    r = grading.grade_dir(gen_dir, verifier="release-rule", write=False)["files"][AIME]
    assert r["mean_score"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert r["stages"] == {"release-rule": {"correct": 5, "incorrect": 7}}
    assert r["judge_calls_saved"] == 0


class _Judge:
    name = "fake-judge"

    def __init__(self) -> None:
        self.questions: list[str] = []

    def judge(self, questions, responses, ground_truths) -> list[bool]:
        self.questions.extend(questions)
        return [r == "\\boxed{-7}" for r in responses]


def test_a_judge_grades_what_the_rule_stages_reject(gen_dir: Path) -> None:
    judge = _Judge()
    report = grading.grade_dir(gen_dir, judge=judge, write=False)
    r = report["files"][AIME]
    assert r["judge_calls"] == 6 and r["judge_calls_saved"] == 1
    assert r["stages"]["judge"] == {"correct": 1, "incorrect": 5}
    assert r["per_problem"]["2"] == 0.25
    assert report["grader"]["judge"] == "fake-judge" and report["grader"]["note"] is None
    assert judge.questions[0] == "problem 1"


def test_output_length_in_tokens_with_a_tokenizer(gen_dir: Path) -> None:
    class WordTokenizer:
        def encode(self, text: str) -> list[str]:
            return text.split()

    r = grading.grade_dir(gen_dir, tokenizer=WordTokenizer(), write=False)["files"][AIME]
    responses = [resp for _, _, rs in AIME_PROBLEMS for resp in rs]
    assert r["avg_output_length"] == pytest.approx(sum(len(x.split()) for x in responses) / 12)
    assert r["avg_output_length_unit"] == "tokens"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_is_the_unbiased_estimator(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in grading.pass_ks(n):
            subsets = list(itertools.combinations(outcomes, k))
            expected = sum(any(s) for s in subsets) / len(subsets)
            assert grading.pass_at_k(n, c, k) == pytest.approx(expected)
    assert grading.pass_ks(32) == [1, 2, 4, 8, 16, 32]
    assert grading.pass_ks(6) == [1, 2, 4]


def test_distinct_4gram_is_the_release_formula() -> None:
    assert grading.distinct_ngrams(["a b c d e", "a b c d"]) == pytest.approx(2 / 3)
    assert grading.distinct_ngrams(["too short"]) == 0.0


def test_parse_filename() -> None:
    assert grading.parse_filename("Olympiad-Bench_t0.6_p0.95_n4-MNT31744.jsonl") == {
        "temperature": "0.6", "top_p": "0.95", "n": "4", "max_tokens": "31744", "task_name": "Olympiad-Bench",
    }  # fmt: skip
    assert grading.parse_filename("results.jsonl") is None


def test_cli_grade(gen_dir: Path, capsys) -> None:
    assert cli_main(["grade", str(gen_dir), "--verifier", "release-rule"]) == 0
    out = capsys.readouterr().out
    assert AIME in out and "wrote" in out
    report = json.loads((gen_dir / grading.RESULTS_FILE).read_text())
    assert report["grader"]["verifier"] == "release-rule"


def test_cli_grade_errors(tmp_path: Path, capsys) -> None:
    assert cli_main(["grade", str(tmp_path)]) == 2
    assert "no generation files" in capsys.readouterr().err
    assert cli_main(["grade", str(tmp_path / "missing")]) == 2
    assert cli_main(["grade", str(tmp_path), "--verifier", "nope"]) == 2  # one line, not a usage error
    assert "unknown verifier 'nope'" in capsys.readouterr().err


def test_undecided_verdicts_are_counted_apart_never_wrong(tmp_path: Path) -> None:
    from justrl.verifiers import Verdict

    gen = grading.GenerationFile(tmp_path / AIME, grading.parse_filename(AIME) or {})
    gen.samples = [grading.Sample(pid, "5", "r", "q", seed, 1) for pid in (0, 1) for seed in (0, 1)]
    right, wrong = Verdict(True, "5", "ok", "lenient"), Verdict(False, "4", "no", "lenient")
    undecided = Verdict(False, None, "undecided: no verdict within 1s, nor 4s on a retry", undecided=True)
    r = grading.file_metrics(
        gen, [right, undecided, undecided, undecided], verifier_name="justrl-eval", lengths=[1] * 4,
        length_unit="characters", judge_calls=0,
    )  # fmt: skip
    assert (r["undecided"], r["undecided_problems"]) == (3, 1)
    assert r["mean_score"] == 1.0 and r["per_problem"] == {"0": 1.0}  # problem 1 has no verdict yet
    assert r["mean_score_range"] == pytest.approx([0.25, 1.0])
    assert r["stages"] == {"lenient": {"correct": 1, "incorrect": 0}}
    r2 = grading.file_metrics(
        gen, [right, wrong, wrong, undecided], verifier_name="justrl-eval", lengths=[1] * 4,
        length_unit="characters", judge_calls=0,
    )  # fmt: skip
    assert r2["mean_score"] == pytest.approx((0.5 + 0.0) / 2) and r2["undecided"] == 1
    report = {"files": {AIME: r2}, "grader": {"note": None}, "malformed_lines": []}
    assert any("1 response(s) undecided" in line for line in grading.summary_lines(report))
