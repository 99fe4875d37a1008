#!/usr/bin/env bash
# Installs Debian's kubectl (package kubernetes-client; bookworm ships 1.20.2) into .local/kubectl
# for the fidelity tests, which run a real third-party client against the lab's API server.
# Project-local, unpacked with dpkg-deb -x rather than `apt-get install`: the package has no
# dependencies, and a machine may already own /usr/bin/kubectl through another package (Google
# Cloud's `kubectl`), which the Debian package's /usr/bin/kubectl would collide with.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.local/kubectl"
if [ -x "$dest/usr/bin/kubectl" ] && "$dest/usr/bin/kubectl" version --client >/dev/null 2>&1; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "install-kubectl: needs apt-get (Debian); or set KCOCKPIT_KUBECTL to a kubectl binary" >&2; exit 1; }
apt_opts=(-q -o APT::Sandbox::User=root)
# A fresh machine may have no package lists yet (apt-cache finds nothing before an update).
apt-cache "${apt_opts[@]}" show kubernetes-client >/dev/null 2>&1 || apt-get "${apt_opts[@]}" update >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-kubectl: fetching Debian's kubernetes-client into $dest"
(cd "$work" && apt-get "${apt_opts[@]}" download kubernetes-client >/dev/null)
rm -rf "$dest" && mkdir -p "$dest"
dpkg-deb -x "$work"/kubernetes-client_*.deb "$dest"
"$dest/usr/bin/kubectl" version --client
