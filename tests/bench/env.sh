#!/usr/bin/env bash
# Benchmark of `devbundle env docker` latency: local state plus one
# liveness connection, no SSH round trip. Target: median <= 15 ms.
#
#   DEVBUNDLE_TESTBOX_DIR=$(tests/box/cached.sh) tests/bench/env.sh
#
# Boots one machine from the test box with docker, calls `env docker`
# RUNS times (default 50), prints the median and the 90th percentile, and
# destroys the machine. A benchmark, not a test: exits 0 unless something
# failed to run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-50}
box=${DEVBUNDLE_TESTBOX_DIR:?set DEVBUNDLE_TESTBOX_DIR to a built test box: DEVBUNDLE_TESTBOX_DIR=\$(tests/box/cached.sh)}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

work=$(mktemp -d /var/tmp/devbundle-bench-env.XXXXXX)
export DEVBUNDLE_HOME="$work/home"
export DEVBUNDLE_INSECURE_KEY_FILE="$box/insecure_key"
bin="$work/devbundle"
trap '"$bin" -m benchenv destroy --force >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

(cd "$repo" && go build -o "$bin" ./cmd/devbundle)
"$bin" box add "$box/devbox.box" --name devbundle/devbox >/dev/null 2>&1
"$bin" -m benchenv up --box devbundle/devbox --memory 1024 --services docker 2>"$work/up.log" || { cat "$work/up.log" >&2; exit 1; }

times=()
for _ in $(seq "$runs"); do
	t0=$(date +%s%N)
	SHELL=/bin/bash "$bin" -m benchenv env docker >/dev/null
	times+=("$(( ($(date +%s%N) - t0) / 1000 ))")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v runs="$runs" '
	{ a[NR] = $1 }
	END {
		med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		p90 = a[int(NR * 0.9 + 0.5)]
		printf "devbundle env docker, %d runs: median %.1f ms, p90 %.1f ms (target: median <= 15 ms)\n", runs, med / 1000, p90 / 1000
	}'
