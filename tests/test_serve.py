"""`kcockpit serve`: starts on loopback, serves the page, stops cleanly on Ctrl-C / SIGTERM, and
starts no cockpit for anyone without the printed token and a same-origin websocket."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from tests.helpers import PROJECT, eventually, wait_until

# A valid config whose etcd answers nowhere: the cockpit a websocket starts keeps running.
CONFIG = """\
name = "served"
[etcd]
endpoints = ["https://127.0.0.1:1"]
ca = "ca.crt"
cert = "client.crt"
key = "client.key"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
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


def first_line(server: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The line `serve` prints first (the link), read in a thread so a silent server fails the
    test at the deadline instead of hanging it."""
    assert server.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(server.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        raise AssertionError(f"no line from `serve` within {timeout:g} s") from None


def link_of(line: str) -> str:
    return line.rpartition(" ")[2]


@contextlib.contextmanager
def served(tmp_path: Path, port: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `serve` on `port` and its tokened link (page answering) for the block; its
    whole process group, cockpits included, killed after."""
    server = serve(tmp_path, "--port", str(port))
    try:
        link = link_of(first_line(server))
        wait_until(lambda: get(link) == 200, what="the served page")
        yield server, link
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.communicate(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc/*/stat (state and ppid follow the `)`)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def ws_refusal(
    session: aiohttp.ClientSession, url: str, origin: str | None = None
) -> int | None:
    """The HTTP status refusing the websocket upgrade; None if it was accepted."""
    try:
        async with session.ws_connect(url, origin=origin):
            return None
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


def test_serve_on_loopback_answers_200_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    server = serve(tmp_path, "--port", str(port), "--read-only")
    try:
        line = first_line(server)
        status = wait_until(lambda: get(link_of(line)), what="the served page")
        assert status == 200
        server.send_signal(signal.SIGINT)  # what Ctrl-C in the operator's terminal sends
        _, err = server.communicate(timeout=15)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
    assert f"http://127.0.0.1:{port}/?token=" in line and "(read-only)" in line
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


async def test_serve_without_the_token_is_403_and_starts_no_cockpit(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with served(tmp_path, port) as (server, link):
        token = link.partition("?token=")[2]
        assert link == f"{base}/?token={token}" and len(token) >= 43  # token_urlsafe(32)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/") as response:
                assert response.status == 403
                assert response.content_type == "text/plain"
                assert "forbidden" in await response.text()
            async with session.get(f"{base}/?token=wrong{token}") as response:
                assert response.status == 403 and "Set-Cookie" not in response.headers
            # Right Origin, no token: refused on the token alone.
            assert await ws_refusal(session, f"{base}/ws", origin=base) == 403
            assert await ws_refusal(session, f"{base}/ws?token=wrong", origin=base) == 403
        assert children(server.pid) == []


async def test_serve_with_the_token_sets_a_cookie_that_opens_same_origin_websockets_only(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with served(tmp_path, port) as (server, link):
        # unsafe: the default cookie jar keeps no cookies for IP-address hosts.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(link) as response:
                assert response.status == 200 and "kcockpit" in await response.text()
                cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            async with session.get(f"{base}/") as response:  # the cookie alone opens the page
                assert response.status == 200
            assert await ws_refusal(session, f"{base}/ws", origin="http://evil.example") == 403
            assert await ws_refusal(session, f"{base}/ws") == 403  # no Origin at all
            assert children(server.pid) == []

            async def cockpits() -> list[int]:
                return children(server.pid)

            async with session.ws_connect(f"{base}/ws", origin=base) as websocket:
                assert not websocket.closed
                assert len(await eventually(cockpits, what="a cockpit process")) == 1
