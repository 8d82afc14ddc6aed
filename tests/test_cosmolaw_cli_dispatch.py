"""The ``cosmolaw`` dispatcher: help without importing JAX, one module per command."""

import subprocess
import sys

import pytest

from cosmolaw.cli import COMMANDS, build_parser


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_help_lists_every_command_without_importing_jax():
    loaded = _modules_after(
        "import contextlib, io\n"
        "from cosmolaw.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as buf, "
        "contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert all(name in buf.getvalue() for name in " + repr(sorted(COMMANDS)) + ")"
    )
    assert "jax" not in loaded
    assert not {m for m, _ in COMMANDS.values()} & loaded


def test_a_command_gets_its_full_parser_and_others_stay_summaries():
    args = build_parser("list").parse_args(["list"])
    assert callable(args.func)
    # A command whose module was not registered has no handler: only its summary exists.
    assert getattr(build_parser("list").parse_args(["simulate"]), "func", None) is None


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as err:
        build_parser("bogus").parse_args(["bogus"])
    assert err.value.code == 2
