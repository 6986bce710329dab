#!/usr/bin/env bash
# Benchmark of `devbundle up` against the test box's own boot, and of
# `devbundle status` latency beside `vagrant status`.
#
#   DEVBUNDLE_TESTBOX_DIR=$(tests/box/cached.sh) tests/bench/up.sh
#
# In one run, interleaved, RUNS times each:
#   floor  the smoke test's boot-to-sshd: the box booted straight through
#          libvirt, no devbundle code (tests/e2e TestSmokeBoxBoots);
#   up     `devbundle up` of a new machine from a box already in the store,
#          to SSH-ready (insecure key replaced), then destroyed.
# Prints medians and the ratio up/floor (target <= 1.15), then the median
# of RUNS_STATUS calls of `devbundle status` on a running machine (target
# 50 ms) and of `vagrant status` in an empty Vagrant project (reference).
# A benchmark, not a test: it prints verdicts and exits 0 unless something
# failed to run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-3}
runs_status=${RUNS_STATUS:-20}
box=${DEVBUNDLE_TESTBOX_DIR:?set DEVBUNDLE_TESTBOX_DIR to a built test box: DEVBUNDLE_TESTBOX_DIR=\$(tests/box/cached.sh)}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '%s up.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", m}'; }
now() { date +%s.%N; }

work=$(mktemp -d /var/tmp/devbundle-bench-up.XXXXXX)
export DEVBUNDLE_HOME="$work/home"
export DEVBUNDLE_INSECURE_KEY_FILE="$box/insecure_key"
bin="$work/devbundle"
cleanup() {
	"$bin" -m bench destroy --force >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

log "building devbundle"
(cd "$repo" && go build -o "$bin" ./cmd/devbundle)
"$bin" box add "$box/devbox.box" --name devbundle/devbox >/dev/null 2>&1
(cd "$repo" && go test -c -tags e2e -o "$work/e2e.test" ./tests/e2e/)

floor=() up=()
for i in $(seq "$runs"); do
	log "run $i/$runs: smoke boot"
	out=$(cd "$repo/tests/e2e" && DEVBUNDLE_TESTBOX_DIR="$box" "$work/e2e.test" -test.run 'TestSmokeBoxBoots$' -test.v 2>&1) || { echo "$out" >&2; exit 1; }
	floor+=("$(echo "$out" | sed -n 's/.*boot-to-sshd: \([0-9.]*\)s.*/\1/p' | head -1)")
	log "run $i/$runs: devbundle up"
	t0=$(now)
	"$bin" -m bench up --box devbundle/devbox --memory 1024 --services "" 2>"$work/up.log" || { cat "$work/up.log" >&2; exit 1; }
	up+=("$(echo "$(now) - $t0" | bc)")
	if [ "$i" = "$runs" ]; then
		log "status latency, $runs_status calls each"
		st=()
		for _ in $(seq "$runs_status"); do
			t0=$(now); "$bin" -m bench status >/dev/null; st+=("$(echo "($(now) - $t0) * 1000" | bc)")
		done
	fi
	"$bin" -m bench destroy --force >/dev/null 2>&1
done

vs=()
if command -v vagrant >/dev/null; then
	mkdir -p "$work/vproj" && printf 'Vagrant.configure("2") do |c|\n  c.vm.box = "none"\nend\n' >"$work/vproj/Vagrantfile"
	for _ in $(seq 5); do
		t0=$(now); (cd "$work/vproj" && VAGRANT_HOME="$work/vhome" vagrant status >/dev/null 2>&1 || true); vs+=("$(echo "($(now) - $t0) * 1000" | bc)")
	done
fi

f=$(printf '%s\n' "${floor[@]}" | median)
u=$(printf '%s\n' "${up[@]}" | median)
s=$(printf '%s\n' "${st[@]}" | median)
v=$(printf '%s\n' "${vs[@]:-}" | grep . | median || echo nan)
ratio=$(echo "scale=3; $u / $f" | bc)
echo "boot-to-sshd (floor) runs: ${floor[*]}"
echo "devbundle up runs:         ${up[*]}"
printf 'median boot-to-sshd: %ss\nmedian devbundle up: %ss\nratio up/floor: %s (target <= 1.15)\n' "$f" "$u" "$ratio"
printf 'median devbundle status: %s ms (target 50 ms)\nmedian vagrant status (empty project): %s ms\n' "$s" "$v"
