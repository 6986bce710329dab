# The two commands README.md gives. Both do all their own set-up on a
# fresh Debian 12 machine (run as root, or with sudo for apt and libvirt).

.PHONY: test demo demo-clean build

# Everything: host set-up, static checks, unit tests, cross-builds, the
# test box and the e2e tier on real VMs.
test:
	bash tests/run.sh

# The main job: libvirt set-up, a local box, devbundle up, then docker
# against the VM.
demo:
	bash tests/demo.sh

build:
	go build -o devbundle ./cmd/devbundle

demo-clean:
	DEVBUNDLE_HOME=$${DEVBUNDLE_HOME:-$$HOME/.devbundle-demo} ./devbundle -m demo destroy --force
