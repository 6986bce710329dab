#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh Debian 12 machine:
#   bash tests/run.sh            (README's test command: `make test` calls this)
# Stages: host set-up, static checks, unit tier, cross-builds, test box,
# e2e tier (real VMs). Each stage prints how long it took. Any failure fails
# the run. Set SKIP_E2E=1 to stop after the unit tier (never in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
TOOLS_DIR="${DEVBUNDLE_TOOLS_DIR:-/var/cache/devbundle-ci/bin}"
GOLANGCI_VERSION=v2.15.0

stage_start=0
stage() {
	stage_end
	stage_name="$1"
	stage_start=$(date +%s.%N)
	echo "=== stage: $stage_name"
}
stage_end() {
	if [ "$stage_start" != 0 ]; then
		printf '=== stage: %s took %.1fs\n' "$stage_name" "$(echo "$(date +%s.%N) - $stage_start" | bc)"
	fi
	stage_start=0
}
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "=== FAILED in stage: ${stage_name:-setup} (exit $rc)"; fi' EXIT

apt_updated=0
apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

stage "host set-up"
# Go is at /usr/local/go on these machines, not always on PATH.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v bc >/dev/null || apt_install bc
# Real shells for envfmt's eval tests, a real sshd for the SSH tests.
apt_install bash dash zsh fish tcsh openssh-server openssh-client ca-certificates sudo vagrant
if [ "${SKIP_E2E:-0}" != 1 ]; then
	bash .ci/setup-vm-host.sh
fi

stage "modules"
go mod download
go mod verify >/dev/null

stage "format and vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
go vet ./...
go vet -tags e2e ./...
for os in windows darwin; do GOOS=$os go vet ./...; done

stage "lint"
if [ ! -x "$TOOLS_DIR/golangci-lint" ] || ! "$TOOLS_DIR/golangci-lint" version 2>/dev/null | grep -q "${GOLANGCI_VERSION#v}"; then
	mkdir -p "$TOOLS_DIR"
	GOBIN="$TOOLS_DIR" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_VERSION"
fi
"$TOOLS_DIR/golangci-lint" run --build-tags e2e ./...

stage "go mod tidy"
cp go.mod /tmp/devbundle-go.mod.before; cp go.sum /tmp/devbundle-go.sum.before
go mod tidy
if ! cmp -s go.mod /tmp/devbundle-go.mod.before || ! cmp -s go.sum /tmp/devbundle-go.sum.before; then
	echo "go mod tidy changed go.mod or go.sum; run it and commit:"; git diff -- go.mod go.sum || true
	cp /tmp/devbundle-go.mod.before go.mod; cp /tmp/devbundle-go.sum.before go.sum
	exit 1
fi

stage "client binaries for the install-cli tests"
# Real docker and kubectl clients from Debian's packages, served by the
# tests' local mirror (cached outside the clone).
DEVBUNDLE_CLIBINS_DIR=$(bash tests/clibins/mirror-binaries.sh)
export DEVBUNDLE_CLIBINS_DIR
echo "client binaries: $DEVBUNDLE_CLIBINS_DIR"

stage "unit tests"
go test -race -count=1 ./...

stage "cross-builds"
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
	GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 go build -o /dev/null ./cmd/devbundle
	echo "built $target"
done
# The tests compile for the other systems too (nothing here can run them).
for os in windows darwin; do
	for pkg in $(go list ./...); do
		GOOS=$os CGO_ENABLED=0 go test -c -o /dev/null "$pkg" >/dev/null
	done
	echo "tests compile for $os"
done

if [ "${SKIP_E2E:-0}" = 1 ]; then
	stage_end
	echo "=== e2e tier skipped (SKIP_E2E=1)"
	exit 0
fi

stage "test box"
DEVBUNDLE_TESTBOX_DIR=$(bash tests/box/cached.sh)
export DEVBUNDLE_TESTBOX_DIR
echo "test box: $DEVBUNDLE_TESTBOX_DIR"
# The same box without docker.io, for the docker install path.
DEVBUNDLE_TESTBOX_NODOCKER_DIR=$(bash tests/box/cached.sh --no-docker)
export DEVBUNDLE_TESTBOX_NODOCKER_DIR
echo "test box without docker: $DEVBUNDLE_TESTBOX_NODOCKER_DIR"
# The docker box plus a single-node Kubernetes built from Go modules
# (tests/box/k8s; binaries cached in /var/cache/devbundle-testbox/k8s-bin,
# 10-15 minutes cold).
DEVBUNDLE_TESTBOX_K8S_DIR=$(bash tests/box/cached.sh --kubernetes)
export DEVBUNDLE_TESTBOX_K8S_DIR
echo "kubernetes test box: $DEVBUNDLE_TESTBOX_K8S_DIR"

stage "e2e tier (real VMs, one package at a time)"
go test -tags e2e -p 1 -count=1 -timeout 60m ./...

stage_end
echo "=== all stages passed"
