#!/usr/bin/env bash
# Installs etcd 3.5 into .local/etcd (project-local; no service, no system change).
# Debian trixie's etcd-server/etcd-client 3.5.16 run on bookworm: we fetch the .debs with
# apt-get download through a private sources list and unpack them with dpkg-deb -x.
# A binary's version is read whole into a variable, never piped into `head` or `grep -q`: those exit
# at the first line they need, and under pipefail the writer's SIGPIPE (141) would fail the script.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.local/etcd"
etcd_version() { "$dest/usr/bin/etcd" --version 2>/dev/null || true; }
if [ -x "$dest/usr/bin/etcd" ] && [[ $(etcd_version) == *"etcd Version: 3.5."* ]]; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "install-etcd: needs apt-get (Debian); or set KCOCKPIT_ETCD to an etcd 3.5 binary" >&2; exit 1; }
# The machine's own Debian mirror (deb lines or deb822 URIs: fields; comments ignored).
mirror=$(grep -hE '^[[:space:]]*(deb[[:space:]]|URIs:)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} trixie main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- \
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1 \
  -o APT::Sandbox::User=root -q)
echo "install-etcd: fetching etcd 3.5 (Debian trixie packages) into $dest"
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" download etcd-server etcd-client >/dev/null)
rm -rf "$dest" && mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
[[ $(etcd_version) == *"etcd Version: 3.5."* ]] || { echo "install-etcd: the unpacked etcd is not 3.5" >&2; exit 1; }
etcd_version | sed -n 1p
