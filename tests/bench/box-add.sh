#!/usr/bin/env bash
# Benchmark of `devbundle box add` against `vagrant box add` and the floor.
#
#   tests/bench/box-add.sh
#
# Both tools add the same gzip'd libvirt box, given its sha256, from a
# python3 http.server on 127.0.0.1, with DEVBUNDLE_HOME / VAGRANT_HOME in
# fresh temporary folders. The floor is the slower of `sha256sum FILE` and
# `gzip -dc FILE >/dev/null`: one pass of hashing and one of inflating,
# which any tool that verifies and unpacks must pay. Runs are interleaved,
# medians reported, with devbundle's peak RSS (from /usr/bin/time).
# Targets: devbundle <= 1.0 x vagrant, <= 1.2 x floor, peak RSS <= 64 MiB.
# This is a benchmark, not a test: it prints verdicts and exits 0 unless
# something failed to run.
#
# Environment:
#   RUNS                   runs of each command (default 5)
#   DEVBUNDLE_TESTBOX_DIR  a built test box folder (tests/box/cached.sh); its
#                          devbox.box is used when present
#   DEVBUNDLE_BIN          a devbundle binary to use instead of building one
#   DEVBUNDLE_BENCH_CACHE  where a generated box is kept between runs
#                          (default /var/tmp/devbundle-bench-cache)
#   BENCH_IMAGE_MB         size of the generated box's image in MB (default
#                          1024: real files from /usr/lib, about 350 MB gzip'd)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-5}
cache=${DEVBUNDLE_BENCH_CACHE:-/var/tmp/devbundle-bench-cache}
image_mb=${BENCH_IMAGE_MB:-1024}

log() { printf '%s box-add.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'box-add.sh: error: %s\n' "$*" >&2; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not \"$runs\""
[[ $image_mb =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGE_MB must be a positive number, not \"$image_mb\""

work=$(mktemp -d /var/tmp/devbundle-bench.XXXXXX)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------
install_pkg() { # package, for the command named second
	command -v "$2" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "$2 is missing: install the Debian package $1"
	log "installing $1 (waits while another apt/dpkg holds the lock)"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "$1" >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=900 update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "$1" >&2; } ||
		die "could not install $1"
}
install_pkg vagrant vagrant
install_pkg time /usr/bin/time
for c in python3 sha256sum gzip tar; do command -v "$c" >/dev/null || die "$c is missing"; done

# --- devbundle --------------------------------------------------------------
if [ -n "${DEVBUNDLE_BIN:-}" ]; then
	bin=$DEVBUNDLE_BIN
	[ -x "$bin" ] || die "DEVBUNDLE_BIN=$bin is not executable"
else
	log "building devbundle"
	(cd "$repo" && CGO_ENABLED=0 go build -o "$work/devbundle" ./cmd/devbundle) || die "go build ./cmd/devbundle failed"
	bin=$work/devbundle
fi

# --- the box ----------------------------------------------------------------
make_box() { # out: a gzip'd tar of metadata.json, Vagrantfile and a box.img of real files
	local out=$1 dir=$work/make
	mkdir -p "$dir"
	log "generating a libvirt box from ${image_mb} MB of /usr/lib (once; cached in $cache)"
	# Pick regular files from /usr/lib in a fixed order up to the size.
	python3 - "$image_mb" >"$dir/files" <<-'EOF'
		import os, sys
		limit = int(sys.argv[1]) * 1000 * 1000
		total = 0
		for root, dirs, files in os.walk("/usr/lib"):
		    dirs.sort()
		    for f in sorted(files):
		        p = os.path.join(root, f)
		        try:
		            st = os.lstat(p)
		        except OSError:
		            continue
		        if not os.path.isfile(p) or os.path.islink(p) or not os.access(p, os.R_OK):
		            continue
		        if total + st.st_size > limit:
		            continue
		        total += st.st_size
		        sys.stdout.write(p + "\0")
		        if total >= limit * 0.99:
		            sys.exit(0)
	EOF
	tar --null -T "$dir/files" -cf "$dir/box.img" 2>/dev/null || die "could not tar /usr/lib files"
	local gb=$(( ($(stat -c %s "$dir/box.img") + 999999999) / 1000000000 ))
	printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$gb" >"$dir/metadata.json"
	printf 'Vagrant.configure("2") do |config|\nend\n' >"$dir/Vagrantfile"
	local gz=gzip
	command -v pigz >/dev/null && gz=pigz
	tar -C "$dir" -cf - metadata.json Vagrantfile box.img | "$gz" -6 >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$dir"
}

if [ -n "${DEVBUNDLE_TESTBOX_DIR:-}" ] && [ -s "$DEVBUNDLE_TESTBOX_DIR/devbox.box" ]; then
	box=$DEVBUNDLE_TESTBOX_DIR/devbox.box
	log "using the test box $box"
else
	mkdir -p "$cache"
	box=$cache/usrlib-${image_mb}MB.box
	[ -s "$box" ] || make_box "$box"
	log "using the generated box $box"
fi
box_bytes=$(stat -L -c %s "$box")
sum=$(sha256sum "$box" | cut -d' ' -f1)

# --- the server -------------------------------------------------------------
mkdir -p "$work/www"
ln -s "$box" "$work/www/bench.box"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >"$work/http.log" 2>&1 &
server_pid=$!
url=http://127.0.0.1:$port/bench.box
for _ in $(seq 50); do
	curl -sfI "$url" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -sfI "$url" >/dev/null || die "the local HTTP server did not come up; see $work/http.log"

# --- timing -----------------------------------------------------------------
# timed LABEL CMD...: runs CMD after a sync, appends "seconds max_rss_kib" to
# $work/times/LABEL.
timed() {
	local label=$1
	shift
	sync
	if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err"; then
		cat "$work/out" "$work/err" >&2
		die "$label failed: $*"
	fi
	cat "$work/time" >>"$work/times/$label"
}
mkdir -p "$work/times"

export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_PLUGINS=1
cat "$box" >/dev/null # same warm page cache for everyone
log "box: $(numfmt --to=iec "$box_bytes") gzip'd; $runs runs each"
for i in $(seq "$runs"); do
	log "run $i/$runs"
	timed sha256 sha256sum "$box"
	timed gunzip sh -c 'gzip -dc "$1" >/dev/null' sh "$box"

	rm -rf "$work/dbhome"
	DEVBUNDLE_HOME=$work/dbhome timed devbundle "$bin" box add "$url" --name bench/box --checksum "sha256:$sum"
	img=$(find "$work/dbhome" -path '*bench-VAGRANTSLASH-box/0/*/libvirt/box.img' | head -1)
	[ -n "$img" ] && [ -s "$img" ] || die "devbundle box add left no box.img in the store"
	rm -rf "$work/dbhome"

	rm -rf "$work/vhome"
	VAGRANT_HOME=$work/vhome timed vagrant vagrant box add --name bench/box --provider libvirt \
		--checksum "$sum" --checksum-type sha256 "$url"
	img=$(find "$work/vhome/boxes" -path '*bench-VAGRANTSLASH-box/0/*box.img' | head -1)
	[ -n "$img" ] && [ -s "$img" ] || die "vagrant box add left no box.img"
	rm -rf "$work/vhome"
done

# --- report -----------------------------------------------------------------
python3 - "$work/times" "$box_bytes" <<'EOF'
import statistics, sys
work, size = sys.argv[1], int(sys.argv[2])
def load(label):
    rows = [l.split() for l in open(f"{work}/{label}") if l.strip()]
    return [float(r[0]) for r in rows], [int(r[1]) for r in rows]
t = {k: load(k) for k in ("devbundle", "vagrant", "sha256", "gunzip")}
med = {k: statistics.median(v[0]) for k, v in t.items()}
floor = max(med["sha256"], med["gunzip"])
rss = max(t["devbundle"][1]) / 1024
def row(name, k):
    runs = " ".join(f"{x:.2f}" for x in t[k][0])
    print(f"  {name:<22} {med[k]:7.2f} s   (runs: {runs})")
print(f"box add benchmark: {size/1e6:.0f} MB gzip'd box over HTTP on 127.0.0.1, medians of {len(t['devbundle'][0])} runs")
row("devbundle box add", "devbundle")
row("vagrant box add", "vagrant")
row("sha256sum", "sha256")
row("gzip -dc", "gunzip")
print(f"  {'floor (slower of two)':<22} {floor:7.2f} s")
def verdict(ok):
    return "ok" if ok else "MISSED"
rv, rf = med["devbundle"] / med["vagrant"], med["devbundle"] / floor
print(f"  devbundle / vagrant    {rv:7.2f} x   (target <= 1.0: {verdict(rv <= 1.0)})")
print(f"  devbundle / floor      {rf:7.2f} x   (target <= 1.2: {verdict(rf <= 1.2)})")
print(f"  devbundle peak RSS     {rss:7.1f} MiB (target <= 64: {verdict(rss <= 64)})")
EOF
