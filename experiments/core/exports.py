"""Export a discovered law as LaTeX, a NumPy Python module and plain sympy text."""

from __future__ import annotations

from pathlib import Path

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from cosmolaw.io import write_text
from experiments.core.laws import Law


def latex_document(law: Law) -> str:
    """A LaTeX ``equation`` for the law, with its constants as a comment block."""
    lines = [f"% {law.title}"]
    for name, (value, sigma) in law.constants.items():
        lines.append(f"% {name} = {value:.6g} +- {sigma:.2g}")
    lines += [
        r"\begin{equation}",
        f"  {law.latex()}",
        r"\end{equation}",
    ]
    return "\n".join(lines) + "\n"


def python_module(law: Law) -> str:
    """Source of a Python module defining ``law(*variables)`` with NumPy (arrays broadcast)."""
    args = ", ".join(law.variables)
    body = NumPyPrinter({"fully_qualified_modules": True}).doprint(law.expression)
    return (
        f'"""{law.title}: {law.target} = {law.expression} (exported by cosmolaw)."""\n\n'
        "import numpy\n\n\n"
        f"def law({args}):\n"
        f'    """{law.target} as a function of {args} (NumPy arrays broadcast)."""\n'
        f"    return {body}\n"
    )


def text_export(law: Law) -> str:
    """Readable sympy string, ``srepr`` (exact round trip with ``sympy.sympify``) and constants."""
    lines = [
        f"{law.target} = {law.expression}",
        f"srepr: {sp.srepr(law.expression)}",
        f"variables: {', '.join(law.variables)}",
    ]
    lines += [f"{name} = {v:.6g} +- {s:.2g}" for name, (v, s) in law.constants.items()]
    return "\n".join(lines) + "\n"


def write_exports(law: Law, out_dir: str | Path, stem: str = "law") -> list[Path]:
    """Write ``{stem}.tex``, ``{stem}.py`` and ``{stem}.txt`` into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    paths = []
    for suffix, text in (
        (".tex", latex_document(law)),
        (".py", python_module(law)),
        (".txt", text_export(law)),
    ):
        path = out_dir / f"{stem}{suffix}"
        write_text(path, text)
        paths.append(path)
    return paths
