#!/usr/bin/env bash
# Builds the Kubernetes binaries of the kubernetes test box from Go modules
# (this folder's go.mod) and prints the folder holding them. Logs go to
# stderr, the path alone to stdout:
#
#   bins=$(tests/box/k8s/bins.sh)    # kube-apiserver kube-controller-manager
#                                    # kube-scheduler kubelet kubectl VERSION
#
# The binaries are cached outside the clone, in
# ${DEVBUNDLE_K8S_BIN_CACHE:-/var/cache/devbundle-testbox/k8s-bin}/<key>,
# where <key> is the Kubernetes version and a hash of go.mod, go.sum, the Go
# version and the build's flags: a change of the box recipe that leaves them
# alone reuses the binaries. A build is made in a temporary folder and
# renamed into place; one build per key runs at a time; builds of other keys
# unused for 14 days are removed. Each binary is built alone (2 cores).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DEVBUNDLE_K8S_BIN_CACHE:-${DEVBUNDLE_TESTBOX_CACHE:-/var/cache/devbundle-testbox}/k8s-bin}
readonly binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
readonly keep_days=14

log() { printf '%s bins.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bins.sh: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 0 ] || die "no arguments expected; usage: tests/box/k8s/bins.sh"
command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go (go.mod says which) or add /usr/local/go/bin to PATH"

# The module cache and build cache stay outside the clone; the toolchain is
# the local one (no download), and go.mod may be completed by the build.
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0

version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 } $1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2 }' "$here/go.mod" | head -n 1)
[[ "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "no k8s.io/kubernetes v1.Y.Z requirement in $here/go.mod (found \"$version\")"
minor=${BASH_REMATCH[1]}

# What `version` reports: the release's tag, and the commit and date the
# module proxy records for it (empty when it records none).
info=$(cd "$here" && go mod download -json "k8s.io/kubernetes@$version") ||
	die "downloading k8s.io/kubernetes@$version failed; check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))"
commit=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n 1)
infofile=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p' | head -n 1)
date=$(sed -n 's/.*"Time":"\([0-9T:-]*\)[.Z].*/\1Z/p' "$infofile" 2>/dev/null | head -n 1)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$commit -X $pkg.buildDate=$date"
done

# The key: what makes the binaries what they are.
key=$(
	cd "$here"
	{
		sha256sum go.mod go.sum
		go version
		printf '%s\n' "CGO_ENABLED=$CGO_ENABLED -trimpath" "$ldflags" "${binaries[*]}"
	} | sha256sum | cut -d' ' -f1
)
key=$version-${key:0:16}
final=$cache/$key

complete() {
	local b
	[ -s "$1/VERSION" ] || return 1
	for b in "${binaries[@]}"; do
		[ -x "$1/$b" ] || return 1
	done
}

mkdir -p "$cache"
if complete "$final"; then
	touch "$final"
	log "reusing $final"
	printf '%s\n' "$final"
	exit 0
fi

exec 9>"$cache/.lock-$key"
if ! flock -n 9; then
	log "another build of $key is running; waiting for it"
	flock 9
fi
if complete "$final"; then
	log "reusing $final (built while waiting)"
	printf '%s\n' "$final"
	exit 0
fi
rm -rf --one-file-system "$cache/.tmp-$key".* "$final"
tmp=$(mktemp -d "$cache/.tmp-$key.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT

log "building Kubernetes $version (commit ${commit:-unknown}) into $final, one binary at a time"
for b in "${binaries[@]}"; do
	start=$SECONDS
	(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b") ||
		die "building $b failed (output above)"
	log "$b: $((SECONDS - start))s, $(du -h "$tmp/$b" | cut -f1)"
done
printf '%s\n' "$version" >"$tmp/VERSION"
"$tmp/kubectl" version --client --output=yaml | grep -q "gitVersion: $version\$" ||
	die "the built kubectl does not report $version: $("$tmp/kubectl" version --client 2>&1)"
chmod 0755 "$tmp" "$tmp"/*
chmod 0644 "$tmp/VERSION"
mv -T "$tmp" "$final"
trap - EXIT
log "built into $final"

# Builds of other keys nobody has used for a while.
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'v1.*-*' ! -name "$key" -mtime +"$keep_days" -print0 |
	while IFS= read -r -d '' old; do
		log "removing $old (unused for more than $keep_days days)"
		rm -rf --one-file-system "$old"
	done

printf '%s\n' "$final"
