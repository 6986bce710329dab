#!/usr/bin/env bash
# Benchmark of `devbundle up --services kubernetes` from a box already in
# the store (the kubernetes test box) to a ready API server (/readyz), and
# where that time goes: waiting for the guest (boot to SSH, the control
# plane's units starting, /readyz) versus devbundle itself (box import,
# disk, domain, key replacement, probes, certificates, kubeconfig).
#
#   DEVBUNDLE_TESTBOX_K8S_DIR=$(tests/box/cached.sh --kubernetes) tests/bench/kubernetes.sh
#
# Per run (RUNS, default 1; each is minutes under software emulation):
#   cold   `up` of a new machine, first boot, control plane started;
#   warm   `up` again on the running machine (nothing to start);
#   reboot `halt`, then `up` (the cluster's state kept on the disk).
# The split comes from the step lines `up` prints on stderr
# ("==> Waiting for SSH ... done (21.3s)") and the kubernetes service's
# --debug lines ("started 5 units in 48.2s", "ready (waited 12.0s)").
# A benchmark, not a test: it prints figures and exits 0 unless something
# failed to run. Run it under the VM lock when other VM tests may run:
#   flock /tmp/devbundle-vm.lock tests/bench/kubernetes.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-1}
box=${DEVBUNDLE_TESTBOX_K8S_DIR:?set DEVBUNDLE_TESTBOX_K8S_DIR to a built kubernetes test box: DEVBUNDLE_TESTBOX_K8S_DIR=\$(tests/box/cached.sh --kubernetes)}
[ -x "$box/kubectl" ] || { echo "kubernetes.sh: $box has no kubectl; is it a kubernetes test box (tests/box/cached.sh --kubernetes)?" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '%s kubernetes.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
# secs converts a Go duration ("1m2.5s", "850ms", "12.3s") to seconds.
secs() {
	awk -v d="$1" 'BEGIN { t = 0
		while (match(d, /^[0-9.]+(ms|h|m|s)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u)
			if (u == "h") t += n * 3600; else if (u == "m") t += n * 60; else if (u == "ms") t += n / 1000; else t += n
		}
		printf "%.1f", t }'
}
# step LOG NAME prints the seconds of the step line "==> NAME ... done (D)".
step() {
	local d
	d=$(sed -n "s/^==> $2 \.\.\. done (\([^)]*\)).*/\1/p" "$1" | tail -n 1)
	if [ -n "$d" ]; then secs "$d"; else echo 0; fi
}
# debugsecs LOG PATTERN prints the number of seconds after PATTERN.
debugsecs() {
	local v
	v=$(sed -n "s/^debug: kubernetes: .*$2 \([0-9.]*\)s.*/\1/p" "$1" | tail -n 1)
	echo "${v:-0}"
}

work=$(mktemp -d /var/tmp/devbundle-bench-k8s.XXXXXX)
export DEVBUNDLE_HOME="$work/home"
export DEVBUNDLE_INSECURE_KEY_FILE="$box/insecure_key"
bin="$work/devbundle"
cleanup() {
	"$bin" -m bench-k8s destroy --force >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

log "building devbundle"
(cd "$repo" && go build -o "$bin" ./cmd/devbundle)
"$bin" box add "$box/devbox.box" --name devbundle/devbox-kubernetes >/dev/null 2>&1

up() { "$bin" --debug -m bench-k8s up --box devbundle/devbox-kubernetes --services kubernetes --memory 2560 --cpus 2; }

# report NAME LOG TOTAL prints one line: the total, the guest's share and
# devbundle's, with the steps behind them.
report() {
	local name=$1 f=$2 total=$3 ssh addr units ready guest own
	ssh=$(step "$f" "Waiting for SSH")
	addr=$(step "$f" "Waiting for the VM's address")
	units=$(debugsecs "$f" "started [0-9]* units in")
	ready=$(debugsecs "$f" "is ready (waited")
	guest=$(echo "$ssh + $addr + $units + $ready" | bc)
	own=$(echo "$total - $guest" | bc)
	printf '%-7s total %6.1fs | guest %6.1fs (%3.0f%%: ssh %.1f, units %.1f, readyz %.1f) | devbundle %6.1fs (%3.0f%%)\n' \
		"$name" "$total" "$guest" "$(echo "100 * $guest / $total" | bc -l)" "$ssh" "$units" "$ready" \
		"$own" "$(echo "100 * $own / $total" | bc -l)"
	grep '^==> ' "$f" | sed 's/^/          /'
}

for i in $(seq "$runs"); do
	log "run $i/$runs: cold up (new machine, first boot)"
	t0=$(now); up 2>"$work/cold.log" || { cat "$work/cold.log" >&2; exit 1; }; cold=$(echo "$(now) - $t0" | bc)
	"$box/kubectl" --kubeconfig "$DEVBUNDLE_HOME/data/machines/bench-k8s/kubernetes/kubeconfig" get --raw /readyz >/dev/null ||
		{ echo "kubernetes.sh: kubectl cannot reach /readyz after up" >&2; exit 1; }
	log "run $i/$runs: warm up (machine running)"
	t0=$(now); up 2>"$work/warm.log" || { cat "$work/warm.log" >&2; exit 1; }; warm=$(echo "$(now) - $t0" | bc)
	log "run $i/$runs: halt, then up"
	"$bin" -m bench-k8s halt >/dev/null 2>&1
	t0=$(now); up 2>"$work/reboot.log" || { cat "$work/reboot.log" >&2; exit 1; }; reboot=$(echo "$(now) - $t0" | bc)
	echo "run $i/$runs (up --services kubernetes, to /readyz):"
	report cold "$work/cold.log" "$cold"
	report warm "$work/warm.log" "$warm"
	report reboot "$work/reboot.log" "$reboot"
	"$bin" -m bench-k8s destroy --force >/dev/null 2>&1
done
