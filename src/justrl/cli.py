"""The ``justrl`` command line: thin wrappers over the Python API.

Each subcommand is one ``_cmd_*`` function registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from justrl import logs
from justrl import recipe as recipe_mod
from justrl.errors import JustrlError


def _cmd_recipe_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    recipe = recipe_mod.load(args.name, args.overrides)
    if getattr(args, "engine", "native") == "verl":
        from justrl.verl_engine import show_mapping

        show_mapping(recipe)
        return 0
    if args.yaml:
        sys.stdout.write(recipe.to_yaml())
        return 0
    docs = recipe_mod.field_docs()
    paper = recipe_mod.PAPER.to_dict()
    table = Table(title=f"recipe {recipe.name}", show_lines=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_column("paper")
    table.add_column("what it is")
    for key, value in recipe.to_dict().items():
        same = value == paper[key] or key == "name"
        table.add_row(key, repr(value), "" if same else repr(paper[key]), docs.get(key, ""))
    Console(width=max(160, Console().width)).print(table)
    return 0


def _cmd_recipe_list(args: argparse.Namespace) -> int:
    for name in recipe_mod.preset_names():
        print(name)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from justrl import plots

    plots.check_smoothing(args.smooth)  # before reading any log
    labels = args.label or []
    runs = [plots.load_run(path, labels[i] if i < len(labels) else None) for i, path in enumerate(args.runs)]
    out = plots.plot_runs(runs, args.out, smoothing=args.smooth, title=args.title)
    print(f"wrote {out}")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    """Exit 0: every run healthy; 1: an alarm fired; 2 (a JustrlError): a run could not be judged."""
    import json

    from justrl import metrics

    reports = [metrics.check_health(path, entropy_floor=args.entropy_floor, patience=args.patience)
               for path in args.runs]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    for report in [] if args.json else reports:
        state = "healthy" if report.healthy else f"{len(report.alarms)} alarm(s)"
        print(f"{report.run}: {state} over {report.last_step} steps")
        for step, alarm in report.alarms:
            print(f"  step {step}: {alarm}")
    return 0 if all(r.healthy for r in reports) else 1


def _cmd_budget(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from justrl import budget

    recipe = recipe_mod.load(args.recipe, args.overrides)
    est = budget.estimate(recipe, model=args.model, run_dir=args.run_dir, prompt_tokens=args.prompt_tokens,
                          response_tokens=args.response_tokens, gpu_tflops=args.gpu_tflops, mfu=args.mfu)
    if args.json:
        print(json.dumps(est, indent=1))
        return 0
    table = Table(title=f"compute of recipe {recipe.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("non-embedding parameters", f"{est['params']:.3g}"),
        (f"mean prompt / response tokens ({est['tokens_source']})",
         f"{est['prompt_tokens']:,.0f} / {est['response_tokens']:,.0f}"),
        ("sequences per step", f"{est['sequences_per_step']:,}"),
        ("steps", f"{est['steps']:,}"),
        ("FLOPs per step", f"{est['flops_per_step']:.3e}"),
        ("share spent generating", f"{est['generation_share']:.0%}"),
        ("total FLOPs", f"{est['total_flops']:.3e}"),
        (f"GPU-hours at {args.gpu_tflops:g} TFLOP/s peak, {args.mfu:.0%} utilisation", f"{est['gpu_hours']:,.0f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from justrl import evaluate

    config = evaluate.EvalConfig(
        model=args.model, benchmarks=[args.benchmarks], backend=args.backend, workers=args.workers,
        data_dir=args.data_dir, out=args.out, judge_model=args.judge_model,
    )
    result = evaluate.run(evaluate.apply_overrides(config, args.overrides))
    evaluate.print_table(result.summary, Console(width=max(160, Console().width)))
    print(f"wrote {result.report}, {result.chart} and {result.out_dir / evaluate.RESULTS_FILE}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from justrl import grading
    from justrl.errors import EvalError

    judge = None
    if args.judge_model:
        from justrl.judge import load_judge

        judge = load_judge(args.judge_model, include_question=args.judge_with_question)
    report = grading.grade_dir(args.dir, args.verifier, judge, args.tokenizer,
                               timeout_s=args.timeout, workers=args.workers)
    if not report["files"]:
        raise EvalError(f"no generation files in {args.dir}")
    for line in grading.summary_lines(report):
        print(line)
    print(f"wrote {Path(args.dir) / grading.RESULTS_FILE}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.engine == "verl":
        return _train_on_verl(args)
    from pathlib import Path

    from justrl import trainer

    saved = Path(args.run_dir or ".") / "recipe.yaml"
    if args.resume and args.recipe is None:  # the run's own recipe (+ overrides, checked against it)
        recipe = recipe_mod.load(str(saved), args.overrides) if args.overrides and saved.is_file() else None
    else:  # the native engine's default is the CPU demo
        recipe = recipe_mod.load(args.recipe or "toy", args.overrides)
    result = trainer.train(recipe, run_dir=args.run_dir, resume=args.resume)
    return {"finished": 0, "interrupted": 130}.get(result.stopped, 1)


def split_verl_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """``train --engine verl``'s ``key=value`` items -> (recipe overrides, raw verl overrides).

    Recipe fields have no dots; anything dotted or ``+``/``~``-prefixed is a verl key.
    """
    recipe_items, verl_items = [], []
    for item in items:
        key = item.split("=", 1)[0]
        (verl_items if "." in key or key.startswith(("+", "~")) else recipe_items).append(item)
    return recipe_items, verl_items


def _train_on_verl(args: argparse.Namespace) -> int:
    """The recipe (default: the paper's) with the undotted overrides; dotted ones go to verl as they
    are, after the recipe's, so they win."""
    from justrl import verl_engine

    recipe_items, verl_items = split_verl_overrides(args.overrides)
    recipe = recipe_mod.load(args.recipe or "justrl-deepseek-1.5b", recipe_items)
    plan = verl_engine.make_plan(
        recipe, args.run_dir or verl_engine.default_run_dir(recipe), nnodes=args.nnodes,
        gpus_per_node=args.gpus_per_node, train_files=args.train_file, val_files=args.val_file,
        data_dir=args.data_dir, extra=verl_items,
    )
    return verl_engine.launch(recipe, plan, dry_run=args.dry_run)


def _cmd_ablate(args: argparse.Namespace) -> int:
    from justrl import ablations

    base = recipe_mod.load(args.recipe, args.overrides)
    names = list(ablations.PAPER_ABLATIONS) if args.variants == "paper" else [
        v.strip() for v in args.variants.split(",") if v.strip()]
    if args.list:
        for variant in ablations.VARIANTS.values():
            print(f"{variant.name:18s} {variant.description}")
        return 0
    recipes = [ablations.variant_recipe(base, name) for name in ["baseline", *names]]  # validates all first
    if args.engine == "verl":  # one recipe file and launch command per variant, for the cluster
        from pathlib import Path

        for name, variant in zip(["baseline", *names], recipes):
            path = Path(args.out) / name / "recipe.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            variant.save(path)
            print(f"justrl train --engine verl --recipe {path} --run-dir {path.parent}")
        return 0
    rows = ablations.run(base, names, args.out)
    print(f"wrote {args.out}/ablation.md and {args.out}/ablation.png")
    for row in rows:
        after = "—" if row.acc_after is None else f"{100 * row.acc_after:.1f}%"
        print(f"  {row.variant:18s} held-out accuracy after RL: {after}")
    return 0


def _cmd_data_export(args: argparse.Namespace) -> int:
    from justrl import data_export

    recipe = recipe_mod.load(args.recipe, args.overrides)
    result = data_export.export(args.source, args.out, suffix=recipe.prompt_suffix, split=args.split,
                                data_dir=args.data_dir, limit=args.limit, answer_from=recipe.answer_from)
    print(f"{result.path}: {result.rows} problems in verl's schema (split {args.split}; "
          f"{result.read} read from {args.source}, duplicates dropped)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from justrl import compare, compare_report

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="justrl",
        description="Train and evaluate math-reasoning LMs with the JustRL recipe (plain GRPO).",
    )
    from justrl import __version__

    parser.add_argument("--version", action="version", version=f"justrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_recipe(sub)
    _add_plot(sub)
    _add_health(sub)
    _add_budget(sub)
    _add_train(sub)
    _add_ablate(sub)
    _add_data(sub)
    _add_eval(sub)
    _add_grade(sub)
    _add_compare(sub)
    _add_output_flags(parser)
    return parser


def _add_recipe(sub: Any) -> None:
    p_recipe = sub.add_parser("recipe", help="show the recipe's hyperparameters")
    recipe_sub = p_recipe.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    p_show = recipe_sub.add_parser("show", help="print a resolved recipe (preset or YAML file + overrides)")
    p_show.add_argument("name", nargs="?", default="justrl-deepseek-1.5b", help="preset name or YAML file")
    p_show.add_argument("overrides", nargs="*", metavar="key=value", help="override any recipe field")
    p_show.add_argument("--yaml", action="store_true", help="print as YAML (loadable with --recipe)")
    p_show.add_argument("--engine", choices=["native", "verl"], default="native",
                        help="verl: print the recipe as verl overrides, side by side")
    p_show.set_defaults(func=_cmd_recipe_show)
    p_list = recipe_sub.add_parser("list", help="list the presets")
    p_list.set_defaults(func=_cmd_recipe_list)


def _add_plot(sub: Any) -> None:
    p_plot = sub.add_parser("plot", help="draw entropy / reward / response-length curves of one or more runs")
    p_plot.add_argument("runs", nargs="+", help="run directories (metrics.jsonl or verl TensorBoard logs)")
    p_plot.add_argument("-o", "--out", default="dynamics.png", help="PNG to write (default: dynamics.png)")
    p_plot.add_argument("--label", action="append", help="legend label per run, in order (repeatable)")
    p_plot.add_argument("--smooth", type=float, default=0.0,
                        help="EMA smoothing weight in [0, 1) (default 0: as logged)")
    p_plot.add_argument("--title", default=None)
    p_plot.set_defaults(func=_cmd_plot)


def _add_health(sub: Any) -> None:
    p_health = sub.add_parser(
        "health", help="replay the health alarms over runs' logs (exit 0 healthy, 1 an alarm fired, 2 an error)")
    p_health.add_argument("runs", nargs="+", help="run directories (metrics.jsonl or verl TensorBoard logs)")
    p_health.add_argument("--entropy-floor", type=float, default=0.02,
                          help="entropy (nats, >= 0) counted as collapse")
    p_health.add_argument("--patience", type=int, default=5, help="steps (>= 1) a condition must hold to alarm")
    _add_json_flag(p_health, "the reports", _cmd_health)


def _add_budget(sub: Any) -> None:
    p_budget = sub.add_parser("budget", help="tokens, FLOPs and GPU-hours of a recipe or a finished run")
    p_budget.add_argument("--recipe", default="justrl-deepseek-1.5b", help="preset name or YAML file")
    p_budget.add_argument("overrides", nargs="*", metavar="key=value")
    p_budget.add_argument("--run-dir", help="measure token counts from this run's metrics.jsonl")
    p_budget.add_argument("--model", help="model path/id whose config gives the shape (default: Qwen2 1.5B)")
    p_budget.add_argument("--prompt-tokens", type=float, default=150.0, help="assumed mean prompt length (> 0)")
    p_budget.add_argument("--response-tokens", type=float, default=6000.0,
                          help="assumed mean response length (> 0)")
    p_budget.add_argument("--gpu-tflops", type=float, default=989.0,
                          help="peak TFLOP/s of one GPU (> 0; default: H100 bf16)")
    p_budget.add_argument("--mfu", type=float, default=0.2, help="model-FLOP utilisation to assume, in (0, 1]")
    _add_json_flag(p_budget, "the estimate", _cmd_budget)


def _add_json_flag(parser: argparse.ArgumentParser, what: str, handler: Any) -> None:
    """``--json``: the command's result as JSON on stdout (for scripts), and the command's handler."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")
    parser.set_defaults(func=handler)


def _add_train(sub: Any) -> None:
    p_train = sub.add_parser("train", help="train with the recipe: natively (CPU / one GPU) or on verl (cluster)")
    p_train.add_argument("--recipe", default=None,
                         help="preset name or YAML file (default: native: toy, the CPU demo; verl: the paper's recipe)")
    p_train.add_argument("overrides", nargs="*", metavar="key=value",
                         help="override recipe fields; with --engine verl, dotted keys go to verl as they are")
    p_train.add_argument("--run-dir", default=None, help="run directory (default: runs/<name>-<date>-<time>)")
    p_train.add_argument("--engine", choices=["native", "verl"], default="native",
                         help="native: this machine; verl: verl's Ray trainer (see docs: Running on a cluster)")
    p_train.add_argument("--resume", action="store_true", help="native: continue the run in --run-dir")
    _add_verl_arguments(p_train)
    p_train.set_defaults(func=_cmd_train)


def _add_verl_arguments(p_train: argparse.ArgumentParser) -> None:
    """The verl engine's flags (``train`` itself owns --recipe/--run-dir/key=value)."""
    group = p_train.add_argument_group("verl engine (--engine verl)")
    group.add_argument("--nnodes", type=int, default=1, help="nodes in the Ray cluster (default 1)")
    group.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    group.add_argument("--dry-run", action="store_true",
                       help="check the overrides against verl's config, write the launch script, print "
                            "the command, and do not run it")
    group.add_argument("--train-file", action="append", default=None, metavar="PARQUET",
                       help="verl-format training data (default: export recipe.train_data into RUN/data)")
    group.add_argument("--val-file", action="append", default=None, metavar="PARQUET",
                       help="verl-format validation data, repeatable (default: export recipe.val_data)")
    group.add_argument("--data-dir", default=None,
                       help="folder with the paper's benchmarks as NAME/test.parquet, for val_data by name")


def _add_ablate(sub: Any) -> None:
    p_ablate = sub.add_parser("ablate", help="train the recipe and variants that change one thing; compare")
    p_ablate.add_argument("--recipe", default="toy", help="base recipe: preset or YAML (default: the CPU demo)")
    p_ablate.add_argument("overrides", nargs="*", metavar="key=value", help="applied to the base recipe")
    p_ablate.add_argument("--variants", default="paper",
                          help="comma-separated variants, or 'paper' (length-penalty,lenient-verifier)")
    p_ablate.add_argument("--out", default="runs/ablation", help="one run directory per variant below this")
    p_ablate.add_argument("--engine", choices=["native", "verl"], default="native",
                          help="verl: print each variant's recipe changes instead of training here")
    p_ablate.add_argument("--list", action="store_true", help="list the known variants and exit")
    p_ablate.set_defaults(func=_cmd_ablate)


def _add_data(sub: Any) -> None:
    p_data = sub.add_parser("data", help="convert problem sets between formats")
    data_sub = p_data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p_export = data_sub.add_parser(
        "export", help="write problems (deduplicated) in verl's RL dataset schema, prompts with the recipe's suffix")
    p_export.add_argument("source", help="parquet/JSONL file, benchmark folder or name (AIME24), or hub dataset "
                                         "(BytedTsinghua-SIA/DAPO-Math-17k)")
    p_export.add_argument("--format", choices=["verl"], default="verl", help="output schema (verl)")
    p_export.add_argument("--out", required=True, help="parquet file to write")
    p_export.add_argument("--recipe", default=None, help="preset or YAML file whose prompt_suffix is used")
    p_export.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe fields")
    p_export.add_argument("--split", choices=["train", "test"], default="train", help="extra_info.split")
    p_export.add_argument("--data-dir", default=None, help="folder with NAME/test.parquet, or 'download' for the pinned download "
                                                            "(default: the copy packaged with justrl)")
    p_export.add_argument("--limit", type=int, default=None, help="keep the first N problems")
    p_export.set_defaults(func=_cmd_data_export)


def _add_eval(sub: Any) -> None:
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
    p_eval.add_argument("--model", required=True, help="hub id or local folder of the model and its tokenizer")
    p_eval.add_argument("--benchmarks", default="all", help="all, or a comma-separated list (AIME24,MATH-500)")
    p_eval.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                        help="hf: transformers, CPU or GPU (default); vllm: GPU")
    p_eval.add_argument("--workers", type=int, default=1,
                        help="Ray actors to spread samples over (local, or the cluster in RAY_ADDRESS)")
    p_eval.add_argument("--data-dir", default=None,
                        help="folder with NAME/test.parquet per benchmark, or 'download' for the pinned "
                             "download (default: the copy packaged with justrl)")
    p_eval.add_argument("--out", default=None, help="output folder (default: runs/eval/<model name>)")
    p_eval.add_argument("--judge-model", default=None,
                        help="model judge for answers the rule stages reject (CompassVerifier-3B in the paper)")
    p_eval.add_argument("overrides", nargs="*", metavar="key=value", help="override a setting (see below)")
    p_eval.set_defaults(func=_cmd_eval)


def _add_grade(sub: Any) -> None:
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
    p_grade.add_argument("--verifier", default="justrl-eval", choices=verifiers.known_verifiers(),
                         help="grader (default justrl-eval: release-rule, then lenient, then the judge if given); "
                         "release-rule + --judge-model reproduces the release's protocol")
    p_grade.add_argument("--judge-model", default=None, help="model judge (CompassVerifier-3B in the paper)")
    p_grade.add_argument("--judge-with-question", action="store_true",
                         help="send the problem to the judge too (the release sends an empty question)")
    p_grade.add_argument("--tokenizer", default=None, help="tokenizer for output lengths in tokens (else characters)")
    p_grade.add_argument("--timeout", type=float, default=verifiers.DEFAULT_TIMEOUT_S, help="seconds per answer")
    p_grade.add_argument("--workers", type=int, default=None, help="verification processes (default: CPUs)")
    p_grade.set_defaults(func=_cmd_grade)


def _add_compare(sub: Any) -> None:
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


def _add_output_flags(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """--quiet / --verbose / --debug, accepted before or after the subcommand (and its action)."""
    default: object = False if top else argparse.SUPPRESS
    group = parser.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="only warnings and errors; no progress bars")
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="debug messages, and transformers' own warnings and progress bars")
    group.add_argument("--debug", action="store_true", default=default,
                       help="show the traceback of a user error instead of one line")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_output_flags(child, top=False)


def _command_name(args: argparse.Namespace) -> str:
    words = [getattr(args, key, None) for key in ("command", "recipe_command", "data_command")]
    return " ".join(["justrl", *(w for w in words if w)])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logs.setup(-1 if args.quiet else 1 if args.verbose else 0)
    try:
        return int(args.func(args) or 0)
    except JustrlError as exc:
        if args.debug:
            raise
        print(f"{_command_name(args)}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
