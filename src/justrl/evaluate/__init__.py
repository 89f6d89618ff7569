"""Evaluate a model on the JustRL paper's nine benchmarks, exactly as the paper did.

In: a model (or a training run's checkpoints, ``--watch``) and an :class:`EvalConfig`. Out: an
evaluation folder (samples, ``grading_results.json``, ``report.md``, figures) and comparisons of
such folders. Imports: data, verifiers, generate, dynamics and the ground floor; never train.

The protocol (the JustRL release's ``evals/gen_vllm.py``): every problem, stripped, is formatted
as ``"{problem} Please reason step by step, and put your final answer within \\boxed{}."`` and sent
as one user turn through the model's chat template; each benchmark draws N samples per problem
(32 for the small competition sets, 4 for MATH-500, Minerva and Olympiad-Bench), sample ``j``
of every problem using the benchmark's ``j``-th seed, at temperature 0.7, top-p 0.9 and at most
31,744 new tokens. Answers are graded by the ``justrl-eval`` grader (optionally with a model
judge) and the score is avg@N.

A run, top to bottom (:func:`run`, in ``run.py``), and the module each step lives in:

1. settings (``config``): :class:`EvalConfig`, the paper's protocol unless ``key=value`` says
   otherwise;
2. plan (``plan``): the benchmarks' problems, N seeds per benchmark (drawn from ``seed``, so a
   rerun draws the same ones), one output file per benchmark named as the release names them;
3. generate what is missing (``samples``, ``backends``): each output file is append-only JSONL,
   one line per (problem, seed), written as soon as it is generated, so a run killed at any moment
   and started again with the same arguments generates only the missing pairs, never one twice;
4. grade all files (:func:`justrl.evaluate.grading.grade_dir`) into ``grading_results.json``;
5. summarise (``scores``, ``report``): avg@N per benchmark and their average, each with a 95%
   bootstrap confidence interval over problems, next to the published rows of the model's family,
   in ``report.md``, ``summary.json`` and ``scores.png``.

``watch`` (:func:`watch_run`, ``justrl eval --watch RUN_DIR``) does all of that for every
checkpoint of a training run, as it trains, into one table and one figure of score against step.
Beside the run: ``grading`` (grade a folder of samples), ``judge`` (the model judge),
``ray_workers`` (generation spread over Ray actors), ``compare`` and ``compare_report`` (paired
differences between evaluation folders).
"""

from justrl.errors import EvalError
from justrl.evaluate.backends import (
    BackendSpec,
    GenerationProgress,
    backend_spec,
    generate_local,
    gpus_per_worker,
    load_judge,
    sampling_params,
)
from justrl.evaluate.config import CONFIG_FILE, EVAL_PROMPT, EvalConfig, apply_overrides, override_keys
from justrl.evaluate.grading import RESULTS_FILE
from justrl.evaluate.plan import (
    BenchmarkPlan,
    SampleRequest,
    chat_text,
    fill_template,
    format_prompt,
    load_tokenizer,
    order_for_batching,
    output_name,
    plan_benchmark,
    sample_seeds,
)
from justrl.evaluate.report import (
    CHART_FILE,
    REPORT_FILE,
    SUMMARY_FILE,
    plot_scores,
    print_table,
    render_report,
    write_report,
)
from justrl.evaluate.run import EvalResult, generate_missing, run
from justrl.evaluate.samples import SampleFile, check_resumable, read_record, read_samples
from justrl.evaluate.scores import (
    BenchmarkScore,
    Comparison,
    Summary,
    bootstrap_average_ci,
    bootstrap_ci,
    bootstrap_means,
    per_problem_scores,
    score_benchmark,
    summarize,
)
from justrl.evaluate.watch import WatchResult, watch_run

__all__ = [
    "CHART_FILE", "CONFIG_FILE", "EVAL_PROMPT", "REPORT_FILE", "RESULTS_FILE", "SUMMARY_FILE",
    "BackendSpec", "BenchmarkPlan", "BenchmarkScore", "Comparison", "EvalConfig", "EvalError",
    "EvalResult", "GenerationProgress", "WatchResult", "SampleFile", "SampleRequest", "Summary",
    "apply_overrides", "backend_spec", "bootstrap_average_ci", "bootstrap_ci", "bootstrap_means",
    "chat_text", "check_resumable", "fill_template", "format_prompt", "generate_local", "generate_missing",
    "gpus_per_worker", "load_judge", "load_tokenizer", "order_for_batching", "output_name",
    "override_keys", "per_problem_scores", "plan_benchmark", "plot_scores", "print_table",
    "read_record", "read_samples", "render_report", "run", "sample_seeds", "sampling_params", "score_benchmark",
    "watch_run",
    "summarize", "write_report",
]
