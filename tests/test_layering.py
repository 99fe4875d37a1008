"""Imports point one way: tui -> widgets, actions -> cluster, and lab -> cluster; cluster never
imports Textual, and the product never imports the lab but in tui/cli.py, which dispatches
`kcockpit lab` and hands a lab config's `[lab]` table to the lab (the rest reaches the lab only
through cluster/seams.py)."""

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import PROJECT

PRODUCT = ("cluster", "actions", "widgets", "tui")


def test_cluster_imports_no_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, cluster\n"
        "for m in pkgutil.walk_packages(cluster.__path__, 'cluster.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "assert not [n for n in sys.modules if n.split('.')[0] == 'lab'], 'cluster loaded the lab'\n"
        "import lab.daemon, lab.plugin\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'textual', 'tui', 'widgets', 'actions'})\n"
        "print(len([n for n in sys.modules if n.startswith('cluster')]), bad)\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT
    )
    assert result.returncode == 0, result.stderr
    loaded, _ = result.stdout.split(" ", 1)
    assert int(loaded) > 10  # the walk really imported the package's modules


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (PROJECT / package).rglob("*.py"))


def test_only_the_cli_imports_the_lab() -> None:
    product = sources(*PRODUCT)
    importers = [
        path.relative_to(PROJECT).as_posix() for path in product if "lab" in imported_packages(path)
    ]
    assert importers == ["tui/cli.py"]  # found: the scan sees lazy imports too
    assert len(product) > 50


def test_the_lab_uses_the_product_through_cluster_only() -> None:
    lab = sources("lab")
    for path in lab:
        wrong = imported_packages(path) & {"tui", "widgets", "actions", "textual"}
        assert not wrong, f"{path.relative_to(PROJECT)} imports {sorted(wrong)}"
    assert len(lab) > 10
