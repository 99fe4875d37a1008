#!/usr/bin/env bash
# Installs the few Debian packages the project needs when they are missing:
# python3-venv (to create .venv) and tmux (the terminal tests drive the real TUI in it).
# Debian's kubectl (kubernetes-client) is unpacked project-locally by install-kubectl.sh.
set -euo pipefail
missing=()
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v tmux >/dev/null || missing+=(tmux)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
