"""The cockpit in a real terminal: `kcockpit lab` inside tmux at 80x24 with TERM=screen.

Driven with send-keys and read back with capture-pane, as an operator on a bastion sees it;
quitting, or killing the terminal, must leave no kcockpit, lab daemon or etcd process behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PROJECT, wait_until

STARTUP_SECONDS = 60
TEARDOWN_SECONDS = 30


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is installed by `make setup` (scripts/install-system-deps.sh)"
        result = subprocess.run(
            [tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "cockpit")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    terminal = Tmux(f"kcockpit-test-{os.getpid()}")
    command = f"exec {sys.executable} -m tui lab"
    terminal(
        "new-session",
        "-d",
        "-s",
        "cockpit",
        "-x",
        "80",
        "-y",
        "24",
        "-e",
        "TERM=screen",
        "-c",
        str(PROJECT),
        command,
    )
    try:
        yield terminal
    finally:
        terminal("kill-server")


def lab_processes(cockpit_pid: int) -> list[int]:
    """The cockpit, the lab daemon it owns, and everything below the daemon: its nodes and
    every process in them (their sshd, kubelet and etcd)."""
    daemons = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and f"--owner\0{cockpit_pid}\0".encode() in _cmdline(p)
    ]
    below, parents = [], list(daemons)
    while parents:
        parent = parents.pop()
        try:
            children = [
                int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            ]
        except OSError:
            continue
        below += children
        parents += children
    return [cockpit_pid, *daemons, *below]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]


def gone(processes: list[int]) -> None:
    try:
        wait_until(lambda: not alive(processes), TEARDOWN_SECONDS, "every process to exit")
    except AssertionError as exc:
        left = {pid: _cmdline(Path(f"/proc/{pid}"))[:120] for pid in alive(processes)}
        raise AssertionError(f"{exc}; still running: {left}") from None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def started(tmux: Tmux) -> list[int]:
    try:
        screen = wait_until(
            lambda: (s := tmux.screen()).count("● up") == 3 and "★ cp-" in s and s,
            STARTUP_SECONDS,
            "the cockpit showing three healthy members",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nscreen:\n{tmux.screen()}") from None
    assert "kcockpit" in screen and "quorum 2" in screen and "tolerance 1/1" in screen
    pid = int(tmux("display", "-p", "-t", "cockpit", "#{pane_pid}").strip())
    processes = lab_processes(pid)
    etcds = [p for p in processes if _cmdline(Path(f"/proc/{p}")).split(b"\0")[0] == b"etcd"]
    assert len(etcds) == 3, processes  # the lab daemon's three members, besides its pod stand-ins
    return processes


def test_help_and_quit_in_a_real_80x24_terminal(tmux: Tmux) -> None:
    processes = started(tmux)
    tmux("send-keys", "-t", "cockpit", "?")
    help_screen = wait_until(
        lambda: "kcockpit — keys" in (s := tmux.screen()) and s, 10, "the help screen"
    )
    assert "Move etcd leadership" in help_screen and "Quit" in help_screen
    tmux("send-keys", "-t", "cockpit", "Escape")
    wait_until(lambda: "kcockpit — keys" not in tmux.screen(), 10, "help closed")
    tmux("send-keys", "-t", "cockpit", "q")
    gone(processes)


def test_killing_the_terminal_leaves_nothing_behind(tmux: Tmux) -> None:
    processes = started(tmux)
    tmux("kill-session", "-t", "cockpit")
    gone(processes)
