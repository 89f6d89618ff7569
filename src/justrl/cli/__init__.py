"""The ``justrl`` command line: thin wrappers over the Python API.

In: argv. Out: exit codes (0 done, 1 an alarm or a known conflict, 2 a user error in one line) and
what the API writes. Imports: any wing; nothing imports the CLI.

Each subcommand is a pair in one of five modules, ``add_<name>(sub)`` (its arguments) and
``_cmd_<name>(args)`` (its handler): :mod:`~justrl.cli.training` (recipe, train, ablate, data),
:mod:`~justrl.cli.evaluation` (eval, grade, compare), :mod:`~justrl.cli.watching` (plot, health,
budget), :mod:`~justrl.cli.sharing` (card) and :mod:`~justrl.cli.doctor` (doctor). :func:`main` turns every
:class:`~justrl.errors.JustrlError` and every :class:`OSError` (a full or read-only disk, a file
where a folder belongs) into one line on stderr naming the path, and exit code 2 (``--debug``
shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
from collections.abc import Iterator

from justrl import logs
from justrl.cli import doctor, evaluation, sharing, training, watching
from justrl.cli.training import split_verl_overrides
from justrl.errors import JustrlError, StopSignal

__all__ = ["build_parser", "main", "split_verl_overrides"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="justrl",
        description="Train and evaluate math-reasoning LMs with the JustRL recipe (plain GRPO).",
    )
    from justrl import __version__

    parser.add_argument("--version", action="version", version=f"justrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    training.add_recipe(sub)
    watching.add_plot(sub)
    watching.add_health(sub)
    watching.add_budget(sub)
    training.add_train(sub)
    training.add_ablate(sub)
    training.add_data(sub)
    evaluation.add_eval(sub)
    evaluation.add_grade(sub)
    evaluation.add_compare(sub)
    sharing.add_card(sub)
    doctor.add_doctor(sub)
    _add_output_flags(parser)
    return parser


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


KEY_VALUE = re.compile(r"^[+~]?[A-Za-z_][\w.\-]*=")
"""A ``key=value`` setting (verl's ``+key=value`` / ``~key=value`` too)."""


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, with ``key=value`` settings accepted anywhere among the options.

    argparse takes one run of positionals; the ``key=value`` items it leaves over (after an option,
    say) are appended, in order, to the subcommand's ``overrides``. Anything else left over is an
    error, as before.
    """
    args, extras = parser.parse_known_args(argv)
    stray = [item for item in extras if not (KEY_VALUE.match(item) and hasattr(args, "overrides"))]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extras:
        args.overrides = [*(args.overrides or []), *extras]
    return args


TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""What SLURM, Kubernetes, ``docker stop`` and a closed terminal send; the CLI takes them as Ctrl-C."""


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP interrupt it as Ctrl-C does (a
    :class:`~justrl.errors.StopSignal` naming the signal; exit ``128 + signum`` with one line), so
    that ``finally`` blocks run and nothing is left half-written, instead of the process dying
    where it stands. Training installs its own handlers for its loop (the first signal finishes
    the step and checkpoints) and gives these back after it, so a second signal that arrives once
    the checkpoint is written still ends the command this way. Restored on exit; a no-op outside
    the main thread."""

    def interrupt(signum, frame):
        raise StopSignal(signum)

    try:
        previous = {signum: signal.signal(signum, interrupt) for signum in TERMINATING_SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logs.setup(-1 if args.quiet else 1 if args.verbose else 0)
    try:
        with stop_signals_interrupt():
            return int(args.func(args) or 0)
    except JustrlError as exc:
        if args.debug:
            raise
        print(f"{_command_name(args)}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no space, read-only, permission, not a directory, file too large
        if args.debug:
            raise
        from justrl import io

        print(f"{_command_name(args)}: {io.os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a second signal during training is a StopSignal naming it
        signum = int(getattr(exc, "signum", signal.SIGINT))
        print(f"{_command_name(args)}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
