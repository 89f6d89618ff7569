"""Subcommands that evaluate models and compare evaluations: ``eval`` (and ``--watch``), ``grade``, ``compare``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from justrl.errors import ConfigError


def add_eval(sub: Any) -> None:
    p_eval = sub.add_parser(
        "eval", help="evaluate a model on the paper's nine benchmarks (resumable), report vs published",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "key=value settings (paper defaults): n (per benchmark: 32, or 4 for MATH-500/Minerva/\n"
            "Olympiad-Bench), temperature=0.7, top_p=0.9, max_tokens=31744, prompt (the release's\n"
            "template), seed=0, batch_size (32 hf, 512 vllm), limit (first K), grader=justrl-eval,\n"
            "family (published rows: deepseek-1.5b|nemotron-1.5b|all|none), bootstrap=10000, device,\n"
            "dtype, gpu_memory_utilization, tensor_parallel_size, enforce_eager, worker_cpus, retries.\n"
            "Rerun the same command to resume an interrupted evaluation."
        ),
    )
    p_eval.add_argument("--model", default=None, help="hub id or local folder of the model and its tokenizer")
    p_eval.add_argument("--watch", metavar="RUN_DIR", default=None,
                        help="evaluate every checkpoint of a training run (native or verl) as it trains, into "
                             "RUN_DIR/eval_watch/curve.jsonl and curve.png (score against step); resumable")
    p_eval.add_argument("--every", type=int, default=1, metavar="K",
                        help="--watch: only checkpoints whose step is a multiple of K")
    p_eval.add_argument("--poll", type=float, default=60.0, help="--watch: seconds between looks for new checkpoints")
    p_eval.add_argument("--benchmarks", default=None,
                        help="all (default; --watch: AIME24, the paper's Figure 1), or a comma-separated list")
    p_eval.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: transformers, CPU or GPU (default); vllm: GPU")
    p_eval.add_argument("--workers", type=int, default=1,
                        help="Ray actors to spread samples over (local, or the cluster in RAY_ADDRESS)")
    p_eval.add_argument("--data-dir", default=None,
                        help="folder with NAME/test.parquet per benchmark, or 'download' for the pinned "
                             "download (default: the copy packaged with justrl)")
    p_eval.add_argument("-o", "--out", default=None,
                        help="output folder (default: runs/eval/<model name>; runs/eval/<run>-final for a run's final/)")
    p_eval.add_argument("--judge-model", default=None,
                        help="model judge for answers the rule stages reject (CompassVerifier-3B in the paper)")
    p_eval.add_argument("--format", choices=["justrl", "lm-eval"], default="justrl",
                        help="lm-eval: also write results_<date>.json and samples_<task>_<date>.jsonl below "
                             "OUT/lm-eval/, as lm-evaluation-harness writes them")
    p_eval.add_argument("overrides", nargs="*", metavar="key=value", help="override a setting (see below)")
    p_eval.set_defaults(func=_cmd_eval)


def add_grade(sub: Any) -> None:
    from justrl import verifiers

    p_grade = sub.add_parser(
        "grade", help="grade release-format generation files (JSONL) into grading_results.json",
        description=(
            "Grade every {task}_t{T}_p{P}_n{N}-MNT{M}.jsonl file in DIR (lines with example_id, prompt, "
            "answer, seed, response) and write DIR/grading_results.json: avg@n, pass@n, pass@k, "
            "solve_none/all, distinct 4-grams, output length, responses without \\boxed, and which "
            "grading stage settled the answers."
        ),
    )
    p_grade.add_argument("dir", help="folder with the generation files")
    p_grade.add_argument("--verifier", default="justrl-eval", metavar="NAME",
                         help="grader: " + ", ".join(verifiers.known_verifiers()) + ", or module:factory "
                         "for your own (default justrl-eval: release-rule, then lenient, then the judge if "
                         "given); release-rule + --judge-model reproduces the release's protocol")
    p_grade.add_argument("--judge-model", default=None, help="model judge (CompassVerifier-3B in the paper)")
    p_grade.add_argument("--judge-with-question", action="store_true",
                         help="send the problem to the judge too (the release sends an empty question)")
    p_grade.add_argument("--tokenizer", default=None, help="tokenizer for output lengths in tokens (else characters)")
    p_grade.add_argument("--timeout", type=float, default=verifiers.DEFAULT_TIMEOUT_S, help="seconds per answer")
    p_grade.add_argument("--workers", type=int, default=None, help="verification processes (default: CPUs)")
    p_grade.set_defaults(func=_cmd_grade)


def add_compare(sub: Any) -> None:
    p_cmp = sub.add_parser(
        "compare", help="is B really better than A? paired differences of evaluations, with intervals and p-values",
        description=(
            "Compare graded evaluation folders (justrl eval, or release-format folders graded with justrl grade), "
            "each against the first: per shared benchmark and for their average, the difference in avg@N on the "
            "shared problems with a paired bootstrap interval and a sign-flip permutation p-value (Holm-adjusted "
            "over the folders). Folders that differ in temperature, top-p, max tokens, prompt or grader are refused."
        ),
    )
    p_cmp.add_argument("dirs", nargs="+", metavar="DIR", help="evaluation folders; the first is the baseline")
    p_cmp.add_argument("--benchmarks", default=None, help="comma-separated benchmarks (default: all shared)")
    p_cmp.add_argument("-o", "--out", default=None,
                       help="write a markdown report here and the figure beside it (same name, .png)")
    p_cmp.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    p_cmp.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples and sign flips")
    p_cmp.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p_cmp.add_argument("--correction", choices=["holm", "bonferroni", "none"], default="holm",
                       help="multiple-comparison correction over the folders (default: holm)")
    p_cmp.set_defaults(func=_cmd_compare)


def _cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from justrl import evaluate

    if (args.model is None) == (args.watch is None):
        raise ConfigError("give --model MODEL (one model) or --watch RUN_DIR (every checkpoint of a run)")
    config = evaluate.EvalConfig(
        model=args.model or args.watch, benchmarks=[args.benchmarks or ("AIME24" if args.watch else "all")],
        backend=args.backend, workers=args.workers, data_dir=args.data_dir, out=args.out,
        judge_model=args.judge_model, format=args.format,
    )
    if args.watch:
        watched = evaluate.watch_run(args.watch, evaluate.apply_overrides(config, args.overrides),
                                     every=args.every, poll_s=args.poll)
        print(f"wrote {watched.table} and {watched.figure} ({len(watched.scored)} checkpoints scored now)")
        return 0
    result = evaluate.run(evaluate.apply_overrides(config, args.overrides))
    evaluate.print_table(result.summary, Console(width=max(160, Console().width)))
    print(f"wrote {result.report}, {result.chart} and {result.out_dir / evaluate.RESULTS_FILE}")
    if result.lm_eval_files:
        print(f"wrote {result.lm_eval_files[0]} and {len(result.lm_eval_files) - 1} lm-eval samples file(s) beside it")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from justrl.errors import EvalError
    from justrl.evaluate import grading
    from justrl.generate.model_files import check_source

    if not Path(args.dir).is_dir():
        raise EvalError(f"{args.dir}: not a directory")
    if not args.timeout > 0 or args.timeout == float("inf"):  # NaN fails `> 0` too
        raise EvalError(f"--timeout must be a finite number of seconds > 0 (got {args.timeout})")
    for name, what in ((args.tokenizer, "--tokenizer"), (args.judge_model, "--judge-model")):
        if name:  # before any model loads or any answer is verified
            check_source(name, what)
    judge = None
    if args.judge_model:
        from justrl.evaluate.judge import load_judge

        judge = load_judge(args.judge_model, include_question=args.judge_with_question)
    report = grading.grade_dir(args.dir, args.verifier, judge, args.tokenizer,
                               timeout_s=args.timeout, workers=args.workers)
    if not report["files"]:
        raise EvalError(f"no generation files in {args.dir}")
    if not any(r["responses"] for r in report["files"].values()):
        raise EvalError(f"{args.dir}: every generation file is empty or half-written (no complete sample "
                        "line); nothing to grade")
    for line in grading.summary_lines(report):
        print(line)
    print(f"wrote {Path(args.dir) / grading.RESULTS_FILE}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from justrl.evaluate import compare, compare_report

    result = compare.compare(args.dirs, benchmarks=args.benchmarks, resamples=args.resamples, seed=args.seed,
                             correction=args.correction)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        compare_report.print_table(result, Console(width=max(120, Console().width)))
    if args.out:
        report, chart = compare_report.write(result, args.out)
        print(f"wrote {report} and {chart}", file=sys.stderr if args.json else sys.stdout)
    return 0
