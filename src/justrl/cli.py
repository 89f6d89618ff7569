"""The ``justrl`` command line: thin wrappers over the Python API.

Each subcommand is one ``_cmd_*`` function registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys

from justrl import recipe as recipe_mod


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

    labels = args.label or []
    runs = [plots.load_run(path, labels[i] if i < len(labels) else None) for i, path in enumerate(args.runs)]
    out = plots.plot_runs(runs, args.out, smoothing=args.smooth, title=args.title)
    print(f"wrote {out}")
    return 0


def _cmd_budget(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from justrl import budget

    recipe = recipe_mod.load(args.recipe, args.overrides)
    prompt_tokens, response_tokens, source = args.prompt_tokens, args.response_tokens, "assumed"
    steps = None
    if args.run_dir:
        steps, prompt_tokens, response_tokens = budget.measured_tokens(args.run_dir)
        prompt_tokens = prompt_tokens or args.prompt_tokens
        source = f"measured over {steps} steps of {args.run_dir}"
    if args.model:
        from transformers import AutoConfig

        shape = budget.ModelShape.from_config(AutoConfig.from_pretrained(args.model))
    else:
        shape = budget.QWEN2_1_5B
    totals = budget.run_budget(recipe, shape, prompt_tokens, response_tokens, steps)
    table = Table(title=f"compute of recipe {recipe.name}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("non-embedding parameters", f"{shape.params:.3g}"),
        (f"mean prompt / response tokens ({source})", f"{prompt_tokens:,.0f} / {response_tokens:,.0f}"),
        ("sequences per step", f"{recipe.prompts_per_step * recipe.rollouts_per_prompt:,}"),
        ("steps", f"{totals['steps']:,}"),
        ("FLOPs per step", f"{totals['flops_per_step']:.3e}"),
        ("share spent generating", f"{totals['generation_share']:.0%}"),
        ("total FLOPs", f"{totals['total_flops']:.3e}"),
        (f"GPU-hours at {args.gpu_tflops:g} TFLOP/s peak, {args.mfu:.0%} utilisation",
         f"{budget.gpu_hours(totals['total_flops'], args.gpu_tflops * 1e12, args.mfu):,.0f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="justrl",
        description="Train and evaluate math-reasoning LMs with the JustRL recipe (plain GRPO).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    p_plot = sub.add_parser("plot", help="draw entropy / reward / response-length curves of one or more runs")
    p_plot.add_argument("runs", nargs="+", help="run directories (metrics.jsonl or verl TensorBoard logs)")
    p_plot.add_argument("--out", default="dynamics.png", help="PNG to write (default: dynamics.png)")
    p_plot.add_argument("--label", action="append", help="legend label per run, in order (repeatable)")
    p_plot.add_argument("--smooth", type=float, default=0.0, help="EMA smoothing weight in [0, 1)")
    p_plot.add_argument("--title", default=None)
    p_plot.set_defaults(func=_cmd_plot)

    p_budget = sub.add_parser("budget", help="tokens, FLOPs and GPU-hours of a recipe or a finished run")
    p_budget.add_argument("--recipe", default="justrl-deepseek-1.5b", help="preset name or YAML file")
    p_budget.add_argument("overrides", nargs="*", metavar="key=value")
    p_budget.add_argument("--run-dir", help="measure token counts from this run's metrics.jsonl")
    p_budget.add_argument("--model", help="model path/id whose config gives the shape (default: Qwen2 1.5B)")
    p_budget.add_argument("--prompt-tokens", type=float, default=150.0, help="assumed mean prompt length")
    p_budget.add_argument("--response-tokens", type=float, default=6000.0, help="assumed mean response length")
    p_budget.add_argument("--gpu-tflops", type=float, default=989.0, help="peak TFLOP/s of one GPU (H100 bf16)")
    p_budget.add_argument("--mfu", type=float, default=0.2, help="model-FLOP utilisation to assume")
    p_budget.set_defaults(func=_cmd_budget)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except recipe_mod.RecipeError as exc:
        print(f"justrl: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("justrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
