"""Subcommands that build and run recipes: ``recipe``, ``train`` (native or verl), ``ablate``, ``data export``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from justrl import recipe as recipe_mod


def add_recipe(sub: Any) -> None:
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


def add_train(sub: Any) -> None:
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


def add_ablate(sub: Any) -> None:
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


def add_data(sub: Any) -> None:
    p_data = sub.add_parser("data", help="convert problem sets between formats")
    data_sub = p_data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p_export = data_sub.add_parser(
        "export", help="write problems (deduplicated) in verl's RL dataset schema, prompts with the recipe's suffix")
    p_export.add_argument("source", help="parquet/JSONL file, benchmark folder or name (AIME24), or hub dataset "
                                         "(BytedTsinghua-SIA/DAPO-Math-17k)")
    p_export.add_argument("--format", choices=["verl"], default="verl", help="output schema (verl)")
    p_export.add_argument("--out", required=True, help="parquet file to write")
    p_export.add_argument("--recipe", default=None, help="preset or YAML file whose prompt_suffix, prompt_format and train_dedup are used")
    p_export.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe fields")
    p_export.add_argument("--split", choices=["train", "test"], default="train", help="extra_info.split")
    p_export.add_argument("--data-dir", default=None, help="folder with NAME/test.parquet, or 'download' for the pinned download "
                                                            "(default: the copy packaged with justrl)")
    p_export.add_argument("--limit", type=int, default=None, help="keep the first N problems")
    p_export.set_defaults(func=_cmd_data_export)


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


def _cmd_train(args: argparse.Namespace) -> int:
    if args.engine == "verl":
        return _train_on_verl(args)
    from pathlib import Path

    from justrl.train import loop as trainer

    saved = Path(args.run_dir or ".") / "recipe.yaml"
    if args.resume and args.recipe is None:  # the run's own recipe (+ overrides, checked against it)
        recipe = recipe_mod.load(str(saved), args.overrides) if args.overrides and saved.is_file() else None
    else:  # the native engine's default is the CPU demo
        recipe = recipe_mod.load(args.recipe or "toy", args.overrides)
    result = trainer.train(recipe, run_dir=args.run_dir, resume=args.resume)
    if result.stopped == "interrupted":  # the signal's conventional code: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
        import signal

        return 128 + int(signal.Signals[result.stop_signal or "SIGINT"])
    return 0 if result.stopped == "finished" else 1


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
    are, after the recipe's, so they win. A recipe with ``device=cpu`` (the toy's) runs verl on this
    machine's CPU (justrl.verl_engine.cpu_platform; scripts/setup_verl_cpu.sh makes its environment)."""
    from justrl import verl_engine

    recipe_items, verl_items = split_verl_overrides(args.overrides)
    recipe = recipe_mod.load(args.recipe or "justrl-deepseek-1.5b", recipe_items)
    plan = verl_engine.make_plan(
        recipe, args.run_dir or verl_engine.default_run_dir(recipe), nnodes=args.nnodes,
        gpus_per_node=args.gpus_per_node, train_files=args.train_file, val_files=args.val_file,
        data_dir=args.data_dir, extra=verl_items, cpu=recipe.device == "cpu",
    )
    return verl_engine.launch(recipe, plan, dry_run=args.dry_run)


def _cmd_ablate(args: argparse.Namespace) -> int:
    from justrl.train import ablations

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
    from justrl.verl_engine import data_export

    recipe = recipe_mod.load(args.recipe, args.overrides)
    dedupe = recipe.train_dedup and args.split == "train"  # validation rows: always the source's
    result = data_export.export(args.source, args.out, suffix=recipe.prompt_suffix, split=args.split,
                                data_dir=args.data_dir, limit=args.limit, dedupe=dedupe,
                                prompt_format=recipe.prompt_format, answer_from=recipe.answer_from)
    print(f"{result.path}: {result.rows} problems in verl's schema (split {args.split}; "
          f"{result.read} read from {args.source}, {'duplicates dropped' if dedupe else 'all rows kept'}; "
          f"prompt format {recipe.prompt_format})")
    return 0
