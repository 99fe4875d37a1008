"""`kcockpit serve`: starts on loopback, serves the page, stops cleanly on Ctrl-C / SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import PROJECT, wait_until

CONFIG = """\
name = "served"
[etcd]
endpoints = ["https://127.0.0.1:1"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return None


def serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--config", str(config), *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: checked empty after it stops
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_on_loopback_answers_200_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    server = serve(tmp_path, "--port", str(port), "--read-only")
    try:
        status = wait_until(lambda: get(f"http://127.0.0.1:{port}/"), what="the served page")
        assert status == 200
        server.send_signal(signal.SIGINT)  # what Ctrl-C in the operator's terminal sends
        out, err = server.communicate(timeout=15)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
    assert f"http://127.0.0.1:{port}/" in out and "(read-only)" in out
    assert "WARNING" not in err and "Traceback" not in err, err
    wait_until(lambda: not group_alive(server.pid), timeout=10, what="no leftover process")
    assert get(f"http://127.0.0.1:{port}/") is None  # the port is closed


def test_serve_elsewhere_warns_and_bind_errors_are_one_clear_line(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the bind fails, nothing is exposed.
    result = serve(tmp_path, "--host", "192.0.2.1", "--port", str(free_port()))
    _, err = result.communicate(timeout=30)
    assert "WARNING: serving on 192.0.2.1" in err
    assert result.returncode == 2 and "cannot serve on 192.0.2.1" in err, err
    assert "Traceback" not in err
    result = serve(tmp_path, "--port", "70000")
    _, err = result.communicate(timeout=30)
    assert result.returncode == 2 and "--port must be 1-65535" in err and "Traceback" not in err
