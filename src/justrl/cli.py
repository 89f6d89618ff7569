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
