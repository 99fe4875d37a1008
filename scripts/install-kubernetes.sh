#!/usr/bin/env bash
# Builds the lab's Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler) from Debian bookworm's `kubernetes` source package with Debian's Go 1.19, and
# caches the static binaries outside the checkout, so a fresh clone on the same machine (CI)
# reuses them. Bookworm's is the last Debian package that still carries the server code.
#
# Nothing is installed system-wide: the source and Go are fetched with apt-get through a private
# sources list, unpacked under a scratch dir, and the scratch dir is removed afterwards.
# $KCOCKPIT_KUBE_BIN points at other binaries instead (a real cluster's, any version): then
# nothing is built.
set -euo pipefail
version=1.20.2
say() { echo "install-kubernetes: $*"; }

if [ -n "${KCOCKPIT_KUBE_BIN:-}" ]; then
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$KCOCKPIT_KUBE_BIN/$b" ] || { say "\$KCOCKPIT_KUBE_BIN has no executable $b" >&2; exit 1; }
  done
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/kcockpit/kubernetes-$version"
binaries=(kube-apiserver kube-controller-manager kube-scheduler)
cached_build_ok() {
  [ -f "$cache/SHA256SUMS" ] || return 1
  (cd "$cache" && sha256sum --quiet -c SHA256SUMS) >/dev/null 2>&1 || return 1
  for b in "${binaries[@]}"; do
    # Captured whole, not piped into `grep -q` (its early exit is a SIGPIPE under pipefail).
    [ "$("$cache/$b" --version 2>/dev/null)" = "Kubernetes v$version" ] || return 1
  done
}
if cached_build_ok; then
  exit 0
fi

command -v apt-get >/dev/null || { say "needs apt-get (Debian); or set KCOCKPIT_KUBE_BIN to a directory with ${binaries[*]}" >&2; exit 1; }
for tool in make patch; do
  command -v "$tool" >/dev/null || { say "needs $tool" >&2; exit 1; }
done
say "no verified build of Kubernetes v$version in $cache: building it once (about 6 minutes on 2 cores, 4 GB of disk while building)"
# The scratch dir is on disk (/var/tmp), not on a tmpfs /tmp: the build tree is 3.7 GB.
work=$(mktemp -d /var/tmp/kcockpit-kubernetes.XXXXXX)
trap 'rm -rf "$work"' EXIT
mirror=$(grep -hE '^[[:space:]]*(deb[[:space:]]|URIs:)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
{
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm main"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm main"
} >"$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- \
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1 \
  -o APT::Sandbox::User=root -q)

say "step 1/4: fetching Debian's kubernetes source package and golang-1.19 (about 110 MB)"
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only kubernetes >/dev/null)
(cd "$work" && apt-get "${apt_opts[@]}" download golang-1.19-go golang-1.19-src >/dev/null)

say "step 2/4: unpacking the source (upstream tree with vendor/) and applying Debian's patches"
mkdir -p "$work/go" "$work/src"
for deb in "$work"/golang-1.19-*.deb; do dpkg-deb -x "$deb" "$work/go"; done
tar -xzf "$work"/kubernetes_*.orig.tar.gz -C "$work/src" --strip-components=1
tar -xJf "$work"/kubernetes_*.debian.tar.xz -C "$work/src"
while read -r p; do
  case "$p" in '' | '#'*) continue ;; esac
  patch -s -p1 -d "$work/src" <"$work/src/debian/patches/$p"
done <"$work/src/debian/patches/series"

say "step 3/4: compiling ${binaries[*]} (the long step: about 5 minutes on 2 cores)"
# 1.20's build runs in GOPATH mode and reads vendor/ itself (it rejects -mod=vendor); no network.
targets=$(printf 'cmd/%s ' "${binaries[@]}")
(
  cd "$work/src"
  export GOROOT="$work/go/usr/lib/go-1.19" PATH="$work/go/usr/lib/go-1.19/bin:$PATH"
  export CGO_ENABLED=0 GOPROXY=off GOFLAGS= GOCACHE="$work/gocache" HOME="$work"
  export KUBE_GIT_VERSION="v$version" KUBE_GIT_TREE_STATE=clean
  make WHAT="$targets" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; exit 1; }
)

say "step 4/4: caching the binaries in $cache"
rm -rf "$cache.new" && mkdir -p "$cache.new"
for b in "${binaries[@]}"; do
  install -m 0755 "$work/src/_output/bin/$b" "$cache.new/$b"
done
(cd "$cache.new" && sha256sum "${binaries[@]}" >SHA256SUMS)
rm -rf "$cache" && mv "$cache.new" "$cache"
cached_build_ok || { say "the new build does not verify (version or checksum)" >&2; exit 1; }
say "done: $("$cache/kube-apiserver" --version), $(du -sh "$cache" | cut -f1) in $cache"
