#!/usr/bin/env bash
# Prints a folder holding real client binaries for the install-cli tests,
# taken from Debian's packages (the machine has no other way to get them):
#
#   docker   the docker client from docker.io (bookworm: 20.10.24+dfsg1,
#            the same build as dockerd in the test box)
#   kubectl  kubectl from kubernetes-client (bookworm: v1.20.2)
#
#   DEVBUNDLE_CLIBINS_DIR=$(bash tests/clibins/mirror-binaries.sh) go test ./clibins/
#
# Idempotent: the .deb files are kept in $DEVBUNDLE_CLIBINS_CACHE/debs
# (default /var/cache/devbundle-ci/clibins, outside the clone) and the
# binaries in a folder named for the packages' versions, made in a temporary
# folder and renamed into place. Logs go to stderr, the folder alone to
# stdout. Needs apt-get and dpkg-deb (Debian), and root for apt-get.
set -euo pipefail

cache=${DEVBUNDLE_CLIBINS_CACHE:-/var/cache/devbundle-ci/clibins}
debs=$cache/debs
readonly packages=(docker.io kubernetes-client)

log() { printf '%s mirror-binaries.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'mirror-binaries.sh: error: %s\n' "$*" >&2; exit 1; }

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (this script needs Debian's tools)"
mkdir -p "$debs"
chmod 0755 "$cache" "$debs"

# One run at a time; a second caller waits, then reuses the result.
exec 9>"$cache/.lock"
flock 9

deb_of() { find "$debs" -maxdepth 1 -name "$1_*.deb" -print | LC_ALL=C sort | tail -n 1; }

updated=0
for p in "${packages[@]}"; do
	[ -n "$(deb_of "$p")" ] && continue
	log "downloading $p with apt-get download"
	if ! (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$p" >&2); then
		[ $updated = 1 ] && die "apt-get download $p failed"
		log "apt-get download $p failed; updating the package lists and retrying"
		apt-get update -qq >&2
		updated=1
		(cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$p" >&2) || die "apt-get download $p failed"
	fi
done

docker_deb=$(deb_of docker.io)
kubectl_deb=$(deb_of kubernetes-client)
[ -s "$docker_deb" ] || die "no docker.io package in $debs"
[ -s "$kubectl_deb" ] || die "no kubernetes-client package in $debs"

key=$(basename "$docker_deb" .deb)-$(basename "$kubectl_deb" .deb)
final=$cache/bin-$(printf '%s' "$key" | sha256sum | cut -c1-16)
if [ -x "$final/docker" ] && [ -x "$final/kubectl" ]; then
	log "reusing $final"
	printf '%s\n' "$final"
	exit 0
fi

tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
dpkg-deb -x "$docker_deb" "$tmp/docker.io"
dpkg-deb -x "$kubectl_deb" "$tmp/kubernetes-client"
mkdir "$tmp/out"
install -m 0755 "$tmp/docker.io/usr/bin/docker" "$tmp/out/docker"
install -m 0755 "$tmp/kubernetes-client/usr/bin/kubectl" "$tmp/out/kubectl"
printf '%s\n' "$(basename "$docker_deb")" "$(basename "$kubectl_deb")" >"$tmp/out/SOURCES"
"$tmp/out/docker" --version >&2 || die "the extracted docker client does not run"
"$tmp/out/kubectl" version --client >&2 || die "the extracted kubectl does not run"
chmod 0755 "$tmp/out"
rm -rf --one-file-system "$final"
mv -T "$tmp/out" "$final"
log "binaries in $final"
printf '%s\n' "$final"
