"""The ``cosmolaw`` command: one sub-command per job, each defined beside its package.

Each package's ``cli`` module exposes ``register(subparsers)``, which adds its
sub-commands and sets ``func`` (called with the parsed namespace, returning an
exit code). Only the module of the command being run is imported (importing a
package starts JAX), so ``cosmolaw --help`` lists the commands from ``COMMANDS``
without importing any of them.

A command may also have extensions (``EXTENSIONS``): modules imported just before its own,
which fill its registries with what its package may not import itself (the IMNN summary of
``cosmolaw sbi`` trains with ``discovery``, which ``inference`` does not import).

Bad input raises ``ValueError`` (naming the parameter, its value and what is
allowed); the dispatcher prints that one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cosmolaw import __version__

#: Every sub-command: the module whose ``register(subparsers)`` defines it, and the
#: one-line summary ``cosmolaw --help`` shows, in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("simulator.cli", "run a particle-mesh simulation and write DIR/sim.h5"),
    "mock": ("simulator.observe.cli", "draw a mock galaxy survey (counts on the mesh)"),
    "infer": ("inference.cli", "sample initial conditions, bias (and cosmology)"),
    "discover": ("discovery.cli", "find closed-form laws in a table"),
    "compress": ("discovery.compress.cli", "train a neural or MOPED compressor"),
    "sbi": ("inference.implicit.cli", "implicit-likelihood inference on summaries"),
    "list": ("experiments.cli", "list the registered experiments"),
    "run": ("experiments.cli", "run an experiment and write its report"),
}

#: Modules imported before a command's own module when that command runs (one-way imports:
#: they wire packages together for it).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "sbi": ("experiments.core.imnn_summary",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: ``command``'s module registers its full sub-parser(s); the
    other commands are listed with their summary only, their modules left unimported."""
    parser = argparse.ArgumentParser(
        prog="cosmolaw",
        description="Differentiable particle-mesh simulation, field-level inference "
        "and symbolic discovery.",
    )
    parser.add_argument("--version", action="version", version=f"cosmolaw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = {COMMANDS[command][0]} if command in COMMANDS else set()
    for module in EXTENSIONS.get(command, ()):
        importlib.import_module(module)
    registered: set[str] = set()
    for name, (module, summary) in COMMANDS.items():
        if module in wanted:
            if module not in registered:
                importlib.import_module(module).register(subparsers)
                registered.add(module)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cosmolaw`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
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
