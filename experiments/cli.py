"""Command-line sub-commands of ``experiments``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the ``cosmolaw`` parser."""
