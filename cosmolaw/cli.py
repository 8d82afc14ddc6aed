"""The ``cosmolaw`` command: one sub-command per job, each defined beside its package.

Each package's ``cli`` module exposes ``register(subparsers)``, which adds its
sub-commands and sets ``func`` (called with the parsed namespace, returning an
exit code). Those modules import nothing heavy at module level, so ``cosmolaw
--help`` is instant and JAX starts only for the command that needs it.

Bad input raises ``ValueError`` (naming the parameter, its value and what is
allowed); the dispatcher prints that one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cosmolaw import __version__

#: Modules whose ``register(subparsers)`` add sub-commands, in help order.
COMMAND_MODULES = (
    "simulator.cli",
    "simulator.mock_cli",
    "inference.cli",
    "discovery.cli",
    "discovery.compress.cli",
    "experiments.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every package's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="cosmolaw",
        description="Differentiable particle-mesh simulation, field-level inference "
        "and symbolic discovery.",
    )
    parser.add_argument("--version", action="version", version=f"cosmolaw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cosmolaw`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"cosmolaw {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cosmolaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
