#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): set up libvirt, build
# devbundle and a local Debian box from Debian's packages, boot a machine
# from it with Docker, and run a container through the user's own docker
# CLI over TLS.
#
#   make demo            (= bash tests/demo.sh)
#
# DEVBUNDLE_HOME (default ~/.devbundle-demo) keeps the demo's boxes and
# machines apart from yours; `make demo-clean` removes the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export DEVBUNDLE_HOME="${DEVBUNDLE_HOME:-$HOME/.devbundle-demo}"
machine=demo

step() { printf '\n### %s\n' "$*" >&2; }

step "libvirt and QEMU"
bash .ci/setup-vm-host.sh
command -v docker >/dev/null || {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null # only its client is used
}

step "build devbundle"
go build -o ./devbundle ./cmd/devbundle
db=./devbundle

step "build (or reuse) the local Debian box"
box=$(bash tests/box/cached.sh)
echo "box: $box" >&2

step "add the box and boot the machine"
$db box list --json | grep -q '"devbundle/devbox"' ||
	$db box add "$box/devbox.box" --name devbundle/devbox
# The local box authorizes its own first-login key instead of Vagrant's.
export DEVBUNDLE_INSECURE_KEY_FILE="$box/insecure_key"
$db -m "$machine" up --box devbundle/devbox --memory 1024 --services docker
$db -m "$machine" status

# The local box imports its devbundle/hello image on first boot; wait for it.
$db -m "$machine" ssh -- sudo systemctl start devbundle-hello.service

step "docker through devbundle env"
eval "$($db -m "$machine" env docker)"
env | grep '^DOCKER_' >&2
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})'
docker run --rm devbundle/hello

step "done"
echo "The machine keeps running: \"$db -m $machine ssh\" logs in, \"$db -m $machine destroy --force\" removes it." >&2
