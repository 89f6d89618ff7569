"""Grading throughput: justrl's verifiers against Math-Verify called the usual way.

A synthetic corpus shaped like evaluation outputs on the nine benchmarks: the benchmarks' ground
truths, responses of realistic length (several thousand characters of LaTeX-laden reasoning), a
third ending in a right answer (written the ways models write them), a third in a wrong one, and a
third malformed (cut off, no box, unbalanced box). Each grader grades the same corpus once:

- ``math-verify``: ``verify(parse(gold), parse(response))`` in a loop, its default settings;
- ``lenient`` and ``justrl-eval``: :func:`justrl.verifiers.verify_batch` on the default pool (one
  worker per CPU), each on freshly started workers (so nothing cached by the other grader helps),
  timed once the workers are up (their start-up time is printed too). Answers repeated within
  the corpus do hit the workers' caches, as the samples of one problem do in a real evaluation.

Prints responses/second for each, agreement with the corpus's construction labels, and as the last
line ``ratio justrl/math-verify: X`` (justrl-eval throughput over Math-Verify's).

    python benchmarks/grading_throughput.py [--n 3000] [--data-dir DIR (default: the copy packaged with justrl)] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import pyarrow.parquet as pq

from justrl import verifiers
from justrl.data.benchmarks import packaged_dir

DEFAULT_DATA = packaged_dir()  # the nine benchmark files that ship with justrl

SENTENCES = [
    "Let $f(x) = x^2 - 4x + 3$, so the roots are $x = 1$ and $x = 3$.",
    "By the AM-GM inequality, $\\frac{a+b}{2} \\ge \\sqrt{ab}$ with equality when $a = b$.",
    "We consider the residues modulo $7$: the squares are $0, 1, 2, 4$.",
    "Substituting $t = \\tan\\theta$ gives $\\sin 2\\theta = \\frac{2t}{1+t^2}$.",
    "Wait, let me double-check this step: $3 \\cdot 17 = 51$, which is not prime.",
    "Hence the number of valid arrangements is $\\binom{8}{3} = 56$ in this case.",
    "Summing the geometric series, $\\sum_{k=0}^{n} 2^k = 2^{n+1} - 1$.",
    "So the area of the triangle is $\\frac{1}{2} \\cdot 6 \\cdot 8 = 24$.",
    "Alternatively, consider the complement: $1 - \\left(\\frac{5}{6}\\right)^4$.",
    "Let me re-examine the constraint $x + y + z = 10$ with $x, y, z \\ge 0$.",
    "Therefore $\\angle ABC = 60^\\circ$ and the triangle is equilateral.",
    "Now, $\\log_2 64 = 6$, so we need $n \\ge 6$.",
]


WARM_UP = (["\\boxed{\\sqrt{2}}"] * 8, ["2^{1/2}"] * 8)  # not in the corpus


def ground_truths(data_dir: Path) -> list[str]:
    truths = []
    for path in sorted(data_dir.glob("*/test.parquet")):
        for row in pq.read_table(path).to_pylist():
            truths.append(
                str(row["reward_model"]["ground_truth"] if "reward_model" in row else row["answer"])
            )
    if not truths:
        raise SystemExit(f"no benchmark files under {data_dir} (use --data-dir)")
    return truths


def _bare(truth: str) -> str:
    truth = truth.strip()
    inner = verifiers.last_boxed_content(truth) if truth.startswith("\\boxed{") else None
    return inner if inner is not None else truth.strip("$")


def _right_answer(truth: str, rng: random.Random) -> str:
    bare = _bare(truth)
    forms = [bare, bare.replace("\\frac", "\\dfrac"), bare.replace(" ", ""), f"x = {bare}", f"{bare}."]
    return rng.choice(forms)


def _wrong_answer(truth: str, others: list[str], rng: random.Random) -> str:
    bare = _bare(truth)
    if bare.lstrip("-").isdigit():
        return str(int(bare) + rng.choice([-2, -1, 1, 3, 10]))
    other = _bare(rng.choice(others))
    return other if other != bare else f"{bare}+1"


def _reasoning(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < chars:
        sentence = rng.choice(SENTENCES)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)


def corpus(truths: list[str], n: int, seed: int) -> tuple[list[str], list[str], list[bool]]:
    rng = random.Random(seed)
    responses, golds, labels = [], [], []
    for i in range(n):
        truth = rng.choice(truths)
        body = _reasoning(rng, rng.randint(4_000, 24_000))
        kind = i % 3
        if kind == 0:
            response = f"{body}\n\nTherefore, the final answer is $\\boxed{{{_right_answer(truth, rng)}}}$."
        elif kind == 1:
            response = f"{body}\n\n**Final Answer**\n\\[\n\\boxed{{{_wrong_answer(truth, truths, rng)}}}\n\\]"
        else:
            style = rng.randrange(3)
            if style == 0:
                response = body[: rng.randint(len(body) // 2, len(body))]  # cut off mid-reasoning
            elif style == 1:
                response = f"{body}\n\nSo the answer is \\boxed{{{_bare(truth)}"  # unbalanced box
            else:
                response = f"{body}\n\nI am not able to finish this problem."
        responses.append(response)
        golds.append(truth)
        labels.append(kind == 0)
    return responses, golds, labels


def math_verify_usual(responses: list[str], golds: list[str]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for response, gold in zip(responses, golds):
        gold_text = gold if ("$" in gold or "\\boxed" in gold) else f"${gold}$"
        out.append(bool(verify(parse(gold_text), parse(response))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000, help="responses in the corpus")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="verification processes (default: CPUs)")
    args = parser.parse_args()

    responses, golds, labels = corpus(ground_truths(args.data_dir), args.n, args.seed)
    mean_chars = sum(map(len, responses)) / len(responses)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"corpus: {len(responses)} responses, {mean_chars:,.0f} characters on average; "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")  # fmt: skip

    rates: dict[str, float] = {}
    for name in ("math-verify", "lenient", "justrl-eval"):
        if name != "math-verify":  # fresh workers: no answers cached by the previous grader
            verifiers.shutdown_pool()
            start = time.perf_counter()
            verifiers.verify_batch(name, WARM_UP[0], WARM_UP[1], workers=args.workers)
            print(f"{name}: pool start-up {time.perf_counter() - start:.2f} s (not counted)")
        before = verifiers.pool_stats()
        start = time.perf_counter()
        if name == "math-verify":
            correct = math_verify_usual(responses, golds)
        else:
            verdicts = verifiers.verify_batch(name, responses, golds, workers=args.workers)
            correct = [v.correct for v in verdicts]
        elapsed = time.perf_counter() - start
        rates[name] = len(responses) / elapsed
        agreement = sum(c == label for c, label in zip(correct, labels)) / len(labels)
        after = verifiers.pool_stats()
        timeouts, undecided = after.timeouts - before.timeouts, after.undecided - before.undecided
        print(f"{name:12s} {rates[name]:9.1f} responses/s  ({elapsed:.2f} s; agrees with the corpus "
              f"labels on {agreement:.1%}; {timeouts} timeouts retried, {undecided} undecided)")  # fmt: skip
    print(f"ratio justrl/math-verify: {rates['justrl-eval'] / rates['math-verify']:.2f}")


if __name__ == "__main__":
    main()
