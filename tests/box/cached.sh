#!/usr/bin/env bash
# Prints the folder of a complete test box build for the current recipe,
# building it first when the cache holds none. Logs go to stderr, the path
# alone to stdout:
#
#   DEVBUNDLE_TESTBOX_DIR=$(tests/box/cached.sh) go test -tags e2e -p 1 ./tests/e2e/
#
#   tests/box/cached.sh [--no-docker | --kubernetes]
#
# The cache lives in /var/cache/devbundle-testbox (DEVBUNDLE_TESTBOX_CACHE
# overrides it); each build sits in a folder named for the SHA-256 of the
# recipe (build.sh and files/, plus k8s/ for --kubernetes). The Kubernetes
# binaries have a cache of their own (k8s-bin/, see k8s/bins.sh). A build is made in a temporary folder and
# renamed into place, so a killed build is never taken for a complete one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DEVBUNDLE_TESTBOX_CACHE:-/var/cache/devbundle-testbox}
expected=(box.img metadata.json Vagrantfile devbox.box catalog.json insecure_key insecure_key.pub)
readonly keep_days=14 # builds of other recipes unused this long are removed

log() { printf '%s cached.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'cached.sh: error: %s\n' "$*" >&2; exit 1; }

variant=
build_args=()
recipe=(build.sh files)
case "${1:-}" in
'') ;;
--no-docker) variant=-nodocker; build_args=(--no-docker) ;;
--kubernetes)
	variant=-kubernetes
	build_args=(--kubernetes)
	recipe+=(k8s)
	expected+=(kubectl)
	;;
*) die "unknown argument \"$1\"; usage: tests/box/cached.sh [--no-docker | --kubernetes]" ;;
esac
[ $# -le 1 ] || die "one argument at most; usage: tests/box/cached.sh [--no-docker | --kubernetes]"
readonly expected

# The key: every recipe file's path, executable bit and content.
key=$(
	cd "$here"
	find "${recipe[@]}" -type f -print0 | LC_ALL=C sort -z |
		while IFS= read -r -d '' f; do
			x=-
			[ -x "$f" ] && x=x
			printf '%s %s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$x" "$f"
		done | sha256sum | cut -d' ' -f1
)$variant
final=$cache/$key

complete() {
	local f
	[ -d "$1" ] || return 1
	for f in "${expected[@]}"; do
		[ -s "$1/$f" ] || return 1
	done
}

# libvirt's QEMU runs as libvirt-qemu: it must be able to reach box.img.
mkdir -p "$cache"
chmod 0755 "$cache"

if complete "$final"; then
	touch "$final"
	log "reusing $final"
	printf '%s\n' "$final"
	exit 0
fi

# One build per key at a time; a second caller waits and then reuses it.
exec 9>"$cache/.lock-$key"
if ! flock -n 9; then
	log "another build of $key is running; waiting for it"
	flock 9
fi
if complete "$final"; then
	touch "$final"
	log "reusing $final (built while waiting)"
	printf '%s\n' "$final"
	exit 0
fi

# Left by a killed build of this key (nobody else holds the lock).
rm -rf --one-file-system "$cache/.tmp-$key".* "$final"

tmp=$(mktemp -d "$cache/.tmp-$key.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
if [ "$variant" = -kubernetes ]; then
	log "building the kubernetes test box into $final (logs below; 3 minutes, plus about 10-15 when the Kubernetes binaries are not cached yet)"
else
	log "building the test box into $final (logs below; about 2-3 minutes)"
fi
started=$SECONDS
DEVBUNDLE_BOX_DEB_CACHE=${DEVBUNDLE_BOX_DEB_CACHE:-$cache/debs} \
	"$here/build.sh" "${build_args[@]}" "$tmp" >&2
complete "$tmp" || die "build.sh finished but $tmp lacks some of: ${expected[*]}"
chmod 0755 "$tmp"
mv -T "$tmp" "$final"
trap - EXIT
log "built in $((SECONDS - started))s"

# Builds of older recipes nobody has used for a while.
find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
	-regex '.*/[0-9a-f]{64}(-nodocker|-kubernetes)?' ! -name "$key" -mtime +"$keep_days" -print0 |
	while IFS= read -r -d '' old; do
		log "removing $old (unused for more than $keep_days days)"
		rm -rf --one-file-system "$old"
	done

printf '%s\n' "$final"
