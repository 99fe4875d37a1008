"""Imports point one way: tui -> widgets, actions -> cluster; cluster never imports Textual."""

import subprocess
import sys

from tests.helpers import PROJECT


def test_cluster_imports_no_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, cluster\n"
        "for m in pkgutil.walk_packages(cluster.__path__, 'cluster.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "import lab.daemon\n"
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
