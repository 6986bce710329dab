#!/usr/bin/env bash
# Prepares this machine for devbundle's VM test tier (tests/e2e): Debian
# packages for QEMU, libvirt and the test box recipe, then virtlogd and
# libvirtd started by hand (CI machines run no systemd). Safe to run again.
#
# It never starts a libvirt network: tests reach VMs only through QEMU
# user-mode forwards bound to 127.0.0.1, and a virbr0 bridge on the host is
# an error (see /work/shared/TESTBED.md, tests/box/README.md).
set -euo pipefail

log() { printf 'setup-vm-host: %s\n' "$*" >&2; }
die() { printf 'setup-vm-host: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, libvirtd); try: sudo $0"

packages=(
	qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
	debootstrap syslinux syslinux-common mtools dosfstools fdisk e2fsprogs pigz
	dnsmasq-base iptables iproute2 openssh-server
)
missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing[@]}" >/tmp/setup-vm-host.apt.log 2>&1; then
		log "apt-get install failed; running apt-get update once and retrying"
		apt-get -o DPkg::Lock::Timeout=300 update -q >>/tmp/setup-vm-host.apt.log 2>&1 || { tail -n 20 /tmp/setup-vm-host.apt.log >&2; die "apt-get update failed (log above)"; }
		apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing[@]}" >>/tmp/setup-vm-host.apt.log 2>&1 || { tail -n 20 /tmp/setup-vm-host.apt.log >&2; die "apt-get install ${missing[*]} failed (log above)"; }
	fi
fi

check_no_virbr0() {
	if [ -e /sys/class/net/virbr0 ]; then
		die "a virbr0 bridge exists: a libvirt network is running on this host, which the VM tests must never use or start (private addresses are off limits). Stop it with: virsh -c qemu:///system net-destroy default; virsh -c qemu:///system net-autostart --disable default"
	fi
}
check_no_virbr0

# Debian's libvirt packages define a 'default' NAT network and may mark it
# to start with the daemon: unmark every network before libvirtd starts.
for link in /etc/libvirt/qemu/networks/autostart/*.xml; do
	[ -e "$link" ] || [ -L "$link" ] || continue
	log "removing network autostart $link (no libvirt network may start on this host)"
	rm -f "$link"
done

running() { pgrep -x "$1" >/dev/null 2>&1; }
if ! running virtlogd; then
	log "starting virtlogd"
	virtlogd -d
fi
if ! running libvirtd; then
	log "starting libvirtd"
	libvirtd -d
fi

deadline=$((SECONDS + 60))
until virsh -c qemu:///system version >/dev/null 2>&1; do
	[ $SECONDS -lt $deadline ] || die "libvirtd did not answer 'virsh -c qemu:///system version' within 60s; see /var/log/libvirt/libvirtd.log"
	sleep 0.5
done
active=$(virsh -c qemu:///system net-list --name 2>/dev/null | sed '/^$/d' || true)
[ -z "$active" ] || die "libvirt networks are active on this host ($active); the VM tests must not run next to one. Stop them with: virsh -c qemu:///system net-destroy NAME"
check_no_virbr0
log "ready: $(virsh -c qemu:///system version | grep -i 'running hypervisor' | sed 's/^ *//')"
