"""Subcommands that look at runs: ``plot`` (the dynamics curves), ``health`` (the alarms), ``budget`` (compute)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from justrl import recipe as recipe_mod
from justrl.errors import ConfigError


def add_plot(sub: Any) -> None:
    p_plot = sub.add_parser("plot", help="draw entropy / reward / response-length curves of one or more runs")
    p_plot.add_argument("runs", nargs="+", help="run directories (metrics.jsonl, verl_metrics.jsonl or verl TensorBoard logs)")
    p_plot.add_argument("-o", "--out", default="dynamics.png", help="PNG to write (default: dynamics.png)")
    p_plot.add_argument("--label", action="append", help="legend label per run, in order (repeatable)")
    p_plot.add_argument("--smooth", type=float, default=0.0,
                        help="EMA smoothing weight in [0, 1) (default 0: as logged)")
    p_plot.add_argument("--title", default=None)
    p_plot.set_defaults(func=_cmd_plot)


def add_health(sub: Any) -> None:
    p_health = sub.add_parser(
        "health", help="replay the health alarms over runs' logs (exit 0 healthy, 1 an alarm fired, 2 an error)")
    p_health.add_argument("runs", nargs="+", help="run directories (metrics.jsonl, verl_metrics.jsonl or verl TensorBoard logs)")
    p_health.add_argument("--entropy-floor", type=float, default=0.02,
                          help="entropy (nats, >= 0) counted as collapse")
    p_health.add_argument("--patience", type=int, default=5, help="steps (>= 1) a condition must hold to alarm")
    _add_json_flag(p_health, "the reports", _cmd_health)


def add_budget(sub: Any) -> None:
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


def _cmd_plot(args: argparse.Namespace) -> int:
    from justrl.dynamics import plots

    plots.check_smoothing(args.smooth)  # before reading any log
    if Path(args.out).is_dir():
        raise ConfigError(f"-o {args.out} is a folder; give the PNG's file name ({Path(args.out) / 'dynamics.png'})")
    labels = args.label or []
    runs = [plots.load_run(path, labels[i] if i < len(labels) else None) for i, path in enumerate(args.runs)]
    out = plots.plot_runs(runs, args.out, smoothing=args.smooth, title=args.title)
    print(f"wrote {out}")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    """Exit 0: every run healthy; 1: an alarm fired; 2 (a JustrlError): a run could not be judged."""
    from justrl import io
    from justrl.dynamics import metrics

    reports = [metrics.check_health(path, entropy_floor=args.entropy_floor, patience=args.patience)
               for path in args.runs]
    if args.json:
        print(io.json_text([r.to_dict() for r in reports]))
    for report in [] if args.json else reports:
        state = "healthy" if report.healthy else f"{len(report.alarms)} alarm(s)"
        print(f"{report.run}: {state} over {report.last_step} steps")
        for step, alarm in report.alarms:
            print(f"  step {step}: {alarm}")
    return 0 if all(r.healthy for r in reports) else 1


def _cmd_budget(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from justrl import io
    from justrl.dynamics import budget

    recipe = recipe_mod.load(args.recipe, args.overrides)
    est = budget.estimate(recipe, model=args.model, run_dir=args.run_dir, prompt_tokens=args.prompt_tokens,
                          response_tokens=args.response_tokens, gpu_tflops=args.gpu_tflops, mfu=args.mfu)
    if args.json:
        print(io.json_text(est))
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
        *budget.paper_rows(est),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    print("assumptions:\n" + "\n".join(f"  - {line}" for line in est["assumptions"]))
    return 0
