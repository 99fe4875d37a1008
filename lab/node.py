"""A lab node's first process: it makes a Linux node of its namespaces, then runs the node's
OpenSSH server and kubelet and reaps whatever dies in it.

The daemon starts it as PID 1 of new mount, UTS and PID namespaces inside the node's network
namespace (lab/daemon.py). It then shapes the node as a kubeadm control-plane node looks:
- `/etc` and `/var` are overlays on this machine's, their upper layers on a tmpfs of the node's
  own, so the node has its own users, sudoers and sshd config and nothing is written to the host;
- `/etc/kubernetes`, `/etc/cni/net.d` and `/var/lib/etcd` are the node's directories in the lab
  directory, bind-mounted, so a runbook's `mv` works from the host as well as over SSH;
- `/home`, `/run` and `/tmp` are private (the project itself stays visible if it lives in /tmp);
- its hostname is the node's name, and an operator `ops` logs in with the cockpit's key and has
  NOPASSWD sudo; root cannot log in.
When this process ends, the kernel kills everything in the node and its mounts go with it.

A drill (lab/scenarios.py writes it to `drills/NODE.json`) is staged for real here:
`clock_offset` preloads libfaketime into every new process of the node, `etcd_disk_mb` puts
/var/lib/etcd on a filesystem of that size that `fill_percent` fills with ballast once etcd has
laid out its files, and `hold_port` has a process listen on that port before etcd starts.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab.layout import PROJECT_ROOT, LabNode, LabPaths, find_etcd, find_kube_bin

SSHD = "/usr/sbin/sshd"
OPS_USER, OPS_UID = "ops", 2222
STOP_GRACE_SECONDS = 10.0
MS_BIND, MS_REC = 4096, 16384
FILL_WAIT_SECONDS = 10.0  # etcd may never start (a drill may hold its port)
ETCD_LAYOUT_BYTES = 128 * 1024**2  # a WAL segment and the next one, preallocated by etcd

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class Stop(Exception):
    """SIGTERM reached the node: its processes are asked to stop, then the node ends."""


def _mount(
    source: str, target: Path | str, fstype: str = "", flags: int = 0, data: str = ""
) -> None:
    if _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags, data.encode()):
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _bind(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    _mount(str(source), target, flags=MS_BIND | MS_REC)


def shape(
    paths: LabPaths,
    node: LabNode,
    jump: LabNode | None,
    drill: dict[str, float],
    binaries: tuple[Path, ...] = (),
) -> None:
    """Mounts, hostname, the operator and the sshd config of a node (see the module doc);
    `binaries` are directories the node's image carries (etcd's, Kubernetes')."""
    host_key = paths.host_key(node.name).read_bytes()
    authorized = (paths.cockpit / "id_ed25519.pub").read_bytes()
    paths.layers(node.name).mkdir(parents=True, exist_ok=True)
    _mount("tmpfs", paths.layers(node.name), "tmpfs", data="mode=0700")
    # The node's directories and its scratch tmpfs are held open and reached through the
    # descriptors: once /etc and /var are overlays, a lab directory under /var would otherwise
    # be seen through the overlay, where the host's later renames (the runbook's `mv`) break.
    held = [
        os.open(p, os.O_PATH | os.O_DIRECTORY)
        for p in (paths.node_root(node.name), paths.layers(node.name))
    ]
    root, scratch = (Path(f"/proc/self/fd/{fd}") for fd in held)
    for top in ("etc", "var"):
        upper, work = scratch / top, scratch / f"{top}-work"
        upper.mkdir()
        work.mkdir()
        _mount(
            "overlay", f"/{top}", "overlay", data=f"lowerdir=/{top},upperdir={upper},workdir={work}"
        )
    for part in ("etc/kubernetes", "etc/cni/net.d", "var/lib/kubelet", "var/log/pods"):
        (root / part).mkdir(parents=True, exist_ok=True)
        _bind(root / part, Path("/") / part)
    etcd_data = Path("/var/lib/etcd")
    if drill.get("etcd_disk_mb"):
        etcd_data.mkdir(parents=True, exist_ok=True)
        _mount("labdisk", etcd_data, "tmpfs", data=f"size={int(drill['etcd_disk_mb'])}m,mode=0700")
    else:
        _bind(root / "var/lib/etcd", etcd_data)
    _private_dirs(scratch, (PROJECT_ROOT, *binaries))
    for fd in held:
        os.close(fd)  # the mounts keep what they need
    socket.sethostname(node.name)
    Path("/etc/hostname").write_text(f"{node.name}\n")
    Path("/etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n{node.address}\t{node.name}\n::1\tlocalhost ip6-localhost\n"
    )
    _add_operator(authorized)
    _configure_sshd(node, jump, host_key)


def _private_dirs(scratch: Path, keep: tuple[Path, ...]) -> None:
    """/home, /run and /tmp of the node's own. What `keep` names (the project: code, venv,
    etcd; the Kubernetes binaries) stays visible under the new ones when it lives there, as a
    node's image would carry its binaries."""
    for top in ("home", "run", "tmp"):
        private = scratch / top
        private.mkdir(mode=0o1777 if top == "tmp" else 0o755)
        private.chmod(0o1777 if top == "tmp" else 0o755)
        for kept in keep:
            if kept.is_relative_to(f"/{top}"):
                _bind(kept, private / kept.relative_to(f"/{top}"))
        _bind(private, Path(f"/{top}"))


def _add_operator(authorized_key: bytes) -> None:
    """`ops`, known to this node only (its /etc is its own): key login, NOPASSWD sudo."""
    with open("/etc/passwd", "a") as passwd:
        passwd.write(f"{OPS_USER}:x:{OPS_UID}:{OPS_UID}:lab operator:/home/{OPS_USER}:/bin/sh\n")
    with open("/etc/group", "a") as group:
        group.write(f"{OPS_USER}:x:{OPS_UID}:\n")
    with open("/etc/shadow", "a") as shadow:
        shadow.write(f"{OPS_USER}:*:20000:0:99999:7:::\n")  # `*`: no password, not locked
    ssh_dir = Path(f"/home/{OPS_USER}/.ssh")
    ssh_dir.mkdir(parents=True, mode=0o700)
    (ssh_dir / "authorized_keys").write_bytes(authorized_key)
    for path in (ssh_dir.parent, ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, OPS_UID, OPS_UID)
    (ssh_dir / "authorized_keys").chmod(0o600)
    sudoers = Path("/etc/sudoers.d") / OPS_USER
    sudoers.parent.mkdir(exist_ok=True)
    sudoers.write_text(f"{OPS_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)


def _configure_sshd(node: LabNode, jump: LabNode | None, host_key: bytes) -> None:
    """Public keys only, no root; TCP forwarding on the jump host only, and the other nodes
    take logins from the jump host's address only, as behind a real bastion."""
    ssh = Path("/etc/ssh")
    for old in ssh.glob("ssh_host_*"):
        old.unlink()
    key = ssh / "ssh_host_ed25519_key"
    key.write_bytes(host_key)
    key.chmod(0o600)
    allow = f"AllowUsers {OPS_USER}@{jump.address}\n" if jump else ""
    (ssh / "sshd_config").write_text(
        f"ListenAddress {node.address}:{node.ssh_port}\n"
        f"HostKey {key}\n"
        "PermitRootLogin no\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        f"AllowTcpForwarding {'no' if jump else 'yes'}\n"
        f"{allow}"
        "AllowAgentForwarding no\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "PidFile /run/sshd.pid\n"
        "Subsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def hold_port(port: int) -> subprocess.Popen[bytes]:
    """A process that holds `port` on every address before etcd starts, as a stray proxy would."""
    program = (
        "import socket, time\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('0.0.0.0', {port})); s.listen()\n"
        "while True: time.sleep(3600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", program])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # etcd must find it taken
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.02)
    return holder


def skew_clock(seconds: float) -> None:
    """Every process started in the node from now on sees its clock `seconds` off (libfaketime
    preloaded through the node's own /etc/ld.so.preload; setuid sudo included)."""
    library = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), None)
    if library is None:
        raise OSError("libfaketime not installed (Debian package faketime; `make setup`)")
    Path("/etc/faketimerc").write_text(f"{seconds:+g}\n")
    Path("/etc/ld.so.preload").write_text(f"{library}\n")


def fill_disk(path: Path, percent: float) -> None:
    """Once etcd has laid out its WAL, ballast fills `path`'s filesystem to `percent`."""
    deadline = time.monotonic() + FILL_WAIT_SECONDS
    while time.monotonic() < deadline and shutil.disk_usage(path).used < ETCD_LAYOUT_BYTES:
        time.sleep(0.2)
    usage = shutil.disk_usage(path)
    missing = int(usage.total * percent / 100) - usage.used
    if missing > 0:
        descriptor = os.open(path / "ballast", os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.posix_fallocate(descriptor, 0, missing)
        finally:
            os.close(descriptor)


def run(paths: LabPaths, node: LabNode, sshd_only: bool) -> None:
    _on_sigterm()
    spec = paths.load_spec()
    jump = spec.nodes[0] if node.name != spec.nodes[0].name and not sshd_only else None
    try:
        drill = {k: float(v) for k, v in json.loads(paths.drill(node.name).read_text()).items()}
    except FileNotFoundError:
        drill = {}
    if sshd_only:
        binaries: tuple[Path, ...] = ()
    else:
        binaries = (find_etcd().parent, *([find_kube_bin()] if spec.control_plane else []))
    shape(paths, node, jump, drill, binaries)
    if sshd_only:  # a node of the SSH farm (lab/sshfarm.py): sshd is all it runs
        os.execv(SSHD, [SSHD, "-D", "-e"])
    children = [subprocess.Popen([SSHD, "-D", "-e"])]
    if drill.get("hold_port"):
        children.append(hold_port(int(drill["hold_port"])))
    kubelet = subprocess.Popen(
        [sys.executable, "-m", "lab.kubelet", node.name, node.address]
        + ([] if spec.control_plane else ["--standalone"]),
        env={**os.environ, "PATH": os.pathsep.join([*map(str, binaries), os.environ["PATH"]])},
        cwd="/",
    )
    children.append(kubelet)
    if drill.get("clock_offset"):
        skew_clock(drill["clock_offset"])
    if drill.get("fill_percent"):
        filler = threading.Thread(
            target=fill_disk, args=(Path("/var/lib/etcd"), drill["fill_percent"]), daemon=True
        )
        filler.start()
    try:
        while True:
            pid, _ = os.wait()  # every orphan of the node ends up here
            if pid == kubelet.pid:
                return
    except (Stop, ChildProcessError):
        pass
    finally:
        _stop(children)


def _on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stop

    signal.signal(signal.SIGTERM, handler)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to the node's main processes; the kubelet gets its grace to stop etcd cleanly."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and any(child.poll() is None for child in children):
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.node")
    parser.add_argument("lab_dir", type=Path)
    parser.add_argument("node")
    parser.add_argument("--sshd-only", action="store_true", help="a farm node: no kubelet")
    args = parser.parse_args()
    paths = LabPaths(args.lab_dir.resolve())
    if os.getpid() != 1:
        sys.exit("lab.node runs as the first process of a node's namespaces (lab/daemon.py)")
    run(paths, paths.load_spec().node(args.node), args.sshd_only)


if __name__ == "__main__":
    main()
