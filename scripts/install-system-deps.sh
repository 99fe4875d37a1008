#!/usr/bin/env bash
# Installs the few Debian packages the project needs when they are missing:
# python3-venv (to create .venv), tmux (the terminal tests drive the real TUI in it), and for
# the lab's real nodes: OpenSSH's server (run per node, never enabled as a system service),
# sudo (the nodes' operator uses it) and libfaketime (the clock-skew drill); rsync, which
# Kubernetes' own build runs (install-kubernetes.sh); libfuse 3 for the slow-disk drill
# (lab/slowdisk.py, through mfusepy).
# Debian's kubectl (kubernetes-client) is unpacked project-locally by install-kubectl.sh.
set -euo pipefail
missing=()
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v sudo >/dev/null || missing+=(sudo)
command -v rsync >/dev/null || missing+=(rsync)
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing+=(faketime)
ls /usr/lib/*/libfuse3.so.3 >/dev/null 2>&1 || missing+=(libfuse3-3)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
# Debian starts a package's service when it is installed: policy-rc.d refuses that, so no
# sshd listens on this machine's port 22 because of the lab (one already there is left alone).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
