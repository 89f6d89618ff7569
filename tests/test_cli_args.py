"""The command line: key=value settings anywhere among a subcommand's options."""

from __future__ import annotations

import pytest

from justrl.cli import build_parser, parse_args


@pytest.mark.parametrize("argv, overrides", [
    ("eval --benchmarks AIME24 n=2 --out X device=cpu", ["n=2", "device=cpu"]),
    ("eval n=2 --model m temperature=0.6 --out X limit=1", ["n=2", "temperature=0.6", "limit=1"]),
    ("train --recipe toy lr=1e-4 --run-dir r total_steps=3", ["lr=1e-4", "total_steps=3"]),
    ("train --engine verl --dry-run +trainer.val_only=true lr=1e-6", ["+trainer.val_only=true", "lr=1e-6"]),
    ("recipe show toy lr=1 --yaml seed=3", ["lr=1", "seed=3"]),
    ("budget --recipe toy total_steps=2", ["total_steps=2"]),
])
def test_key_value_pairs_are_accepted_anywhere(argv, overrides) -> None:
    args = parse_args(build_parser(), argv.split())
    assert args.overrides == overrides


def test_the_options_around_them_keep_their_values() -> None:
    args = parse_args(build_parser(), ["eval", "--benchmarks", "AIME24", "n=2", "--out", "X", "device=cpu"])
    assert (args.benchmarks, args.out) == ("AIME24", "X")


@pytest.mark.parametrize("argv", ["grade d x=1", "eval --model m n=1 --out X stray", "health r --patience 3 lr=1"])
def test_leftovers_that_are_not_settings_or_have_nowhere_to_go_are_refused(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(build_parser(), argv.split())
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
