"""Subcommands that share a trained policy: ``card`` (model card, optional upload to the Hub)."""

from __future__ import annotations

import argparse
from typing import Any


def add_card(sub: Any) -> None:
    p_card = sub.add_parser(
        "card", help="write a model card (README.md) into a policy folder; optionally upload it to the Hub",
        description=(
            "Write MODEL_DIR/README.md: the recipe and its deviations from the paper (recipe.yaml of the run), "
            "the benchmark table with 95%% intervals (--eval: a justrl eval folder), the training curves "
            "(the run's dynamics.png, copied beside the card) and the Hub's model-index metadata."
        ),
    )
    p_card.add_argument("model_dir", metavar="MODEL_DIR", help="the policy folder (a run's final/)")
    p_card.add_argument("--eval", dest="eval_dir", default=None, metavar="EVAL_DIR",
                        help="evaluation folder (justrl eval's --out) whose scores go in the card")
    p_card.add_argument("--push", default=None, metavar="REPO_ID",
                        help="then upload the folder to this Hub model repository (needs a token: HF_TOKEN)")
    p_card.add_argument("--private", action="store_true", help="--push: create the repository private")
    p_card.set_defaults(func=_cmd_card)


def _cmd_card(args: argparse.Namespace) -> int:
    from justrl.integrations import hub

    path = hub.write_card(args.model_dir, args.eval_dir)
    print(f"wrote {path}")
    if args.push:
        print(f"uploaded {args.model_dir} to {hub.push(args.model_dir, args.push, private=args.private)}")
    return 0
