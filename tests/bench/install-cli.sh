#!/usr/bin/env bash
# Benchmark of a repeated `devbundle install-cli` (the cached path): the
# client is in <cache>/bin already, so the call reads config, finds the
# binary and prints the PATH export, with no network at all.
# Target: median <= 20 ms.
#
#   tests/bench/install-cli.sh
#
# Serves Debian's real kubectl (tests/clibins/mirror-binaries.sh) in
# dl.k8s.io's layout from a local HTTP server on 127.0.0.1, installs it once
# with --cli-version (no machine needed), then times RUNS (default 50) more
# calls and prints the median and the 90th percentile. The version probe of
# a running machine (a TLS request to its server) is not part of this
# figure. A benchmark, not a test: exits 0 unless something failed to run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-50}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
command -v python3 >/dev/null || { echo "install-cli.sh: python3 is needed for the local mirror" >&2; exit 1; }

bins=$(bash "$repo/tests/clibins/mirror-binaries.sh")
work=$(mktemp -d /var/tmp/devbundle-bench-installcli.XXXXXX)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
export DEVBUNDLE_HOME="$work/home"
bin="$work/devbundle"
(cd "$repo" && go build -o "$bin" ./cmd/devbundle)

version=$("$bins/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"v\([0-9.]*\).*/\1/p')
mirror="$work/mirror/release/v$version/bin/linux/amd64"
mkdir -p "$mirror"
cp "$bins/kubectl" "$mirror/kubectl"
sha256sum "$mirror/kubectl" | cut -d' ' -f1 >"$mirror/kubectl.sha256"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" "$port" >/dev/null 2>&1 &
server_pid=$!
export DEVBUNDLE_MIRROR_KUBECTL="http://127.0.0.1:$port"
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

args=(install-cli kubernetes --cli-version "$version" --shell bash)
"$bin" "${args[@]}" >/dev/null 2>"$work/first.log" || { cat "$work/first.log" >&2; exit 1; }
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
# From here on the mirror is gone: every call must be served by the cache.

times=()
for _ in $(seq "$runs"); do
	t0=$(date +%s%N)
	"$bin" "${args[@]}" >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; exit 1; }
	times+=("$(( ($(date +%s%N) - t0) / 1000 ))")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v runs="$runs" '
	{ a[NR] = $1 }
	END {
		med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		p90 = a[int(NR * 0.9 + 0.5)]
		printf "devbundle install-cli (cached), %d runs: median %.1f ms, p90 %.1f ms (target: median <= 20 ms)\n", runs, med / 1000, p90 / 1000
	}'
