#!/usr/bin/env bash
# Builds the devbundle test box: a Vagrant libvirt box of Debian 12 made from
# Debian's packages, without mounting any disk image.
#
#   tests/box/build.sh [--no-docker | --kubernetes] OUTDIR
#
# OUTDIR receives box.img, metadata.json, Vagrantfile, devbox.box (the three
# of them as a gzip'd tar), catalog.json and insecure_key (+ .pub); with
# --kubernetes also kubectl (the same version as the box's cluster).
# Needs root and: debootstrap, sfdisk, mke2fs, mkfs.fat, syslinux, mtools,
# qemu-img, gzip; --kubernetes also Go (tests/box/k8s/bins.sh builds the
# Kubernetes binaries). See tests/box/README.md.
set -euo pipefail

# Bump when the box changes in a way a test can see; it lands in
# /etc/os-release (VARIANT_VERSION) and in catalog.json.
readonly RECIPE_VERSION=1.1.0
readonly SUITE=bookworm
readonly DISK_GIB=10          # virtual size of box.img
readonly BOOT_MIB=128         # FAT partition holding syslinux, kernel, initrd
readonly BOOT_START=2048      # sectors; partitions 1 MiB aligned

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '%s build.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
	cat >&2 <<'EOF'
usage: tests/box/build.sh [--no-docker | --kubernetes] OUTDIR
  --no-docker   build the same box without docker.io (box devbundle/devbox-nodocker)
  --kubernetes  the box plus a single-node Kubernetes (box devbundle/devbox-kubernetes)
EOF
	exit 2
}

docker=1
kubernetes=0
outdir=
while [ $# -gt 0 ]; do
	case "$1" in
	--no-docker) docker=0 ;;
	--kubernetes) kubernetes=1 ;;
	-h | --help) usage ;;
	-*) printf 'build.sh: error: unknown option %q\n' "$1" >&2; usage ;;
	*)
		[ -z "$outdir" ] || { printf 'build.sh: error: more than one OUTDIR given\n' >&2; usage; }
		outdir=$1
		;;
	esac
	shift
done
[ -n "$outdir" ] || usage
if [ "$kubernetes" = 1 ] && [ "$docker" = 0 ]; then
	printf 'build.sh: error: --kubernetes and --no-docker exclude each other: the kubernetes box is the docker box plus Kubernetes\n' >&2
	usage
fi

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it); try: sudo $0 $*"
missing=()
for tool in debootstrap chroot unshare sfdisk mke2fs mkfs.fat syslinux mcopy qemu-img gzip tar sha256sum mountpoint; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
mbr_bin=/usr/lib/SYSLINUX/mbr.bin
[ -r "$mbr_bin" ] || missing+=("$mbr_bin")
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}; install them with: .ci/setup-vm-host.sh (or apt-get install debootstrap fdisk e2fsprogs dosfstools syslinux syslinux-common mtools qemu-utils)"
if [ "$kubernetes" = 1 ]; then
	command -v go >/dev/null 2>&1 || die "--kubernetes builds Kubernetes from Go modules, but go is not on PATH; add /usr/local/go/bin to PATH"
fi

# Everything below runs in a private mount namespace: the /proc and /sys that
# debootstrap mounts inside the root vanish with the build, even if it is killed.
if [ "${DEVBUNDLE_BOX_UNSHARED:-}" != 1 ]; then
	args=()
	[ "$docker" = 1 ] || args+=(--no-docker)
	[ "$kubernetes" = 0 ] || args+=(--kubernetes)
	exec unshare --mount --propagation private env DEVBUNDLE_BOX_UNSHARED=1 bash "${BASH_SOURCE[0]}" "${args[@]}" "$outdir"
fi

# The Debian mirror apt already uses on this machine (deb822 or one-line
# sources), unless DEVBUNDLE_BOX_MIRROR says otherwise.
debian_mirror() {
	if [ -n "${DEVBUNDLE_BOX_MIRROR:-}" ]; then
		printf '%s\n' "$DEVBUNDLE_BOX_MIRROR"
		return
	fi
	local found
	found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '
			/^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }
			/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
		' | grep -E '^https?://[^ ]+/debian/?$' | head -n 1 || true)
	printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/devbundle-box.XXXXXX")
# --one-file-system: never descend into anything still mounted in the root.
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$work/rootfs
started=$SECONDS

# The Kubernetes binaries first: a Go build that fails should fail the box
# before debootstrap runs. bins.sh caches them outside the clone.
if [ "$kubernetes" = 1 ]; then
	k8s_bins=$("$here/k8s/bins.sh") || die "building the Kubernetes binaries failed (log above)"
	k8s_version=$(cat "$k8s_bins/VERSION")
	log "Kubernetes $k8s_version binaries from $k8s_bins"
fi

# fdisk: sfdisk, which devbundle uses to grow the root partition to --disk.
packages=systemd,systemd-sysv,udev,dbus,openssh-server,sudo,iproute2,fdisk,linux-image-cloud-amd64,initramfs-tools,zstd,busybox-static
box_name=devbundle/devbox
variant="devbundle test box"
if [ "$docker" = 1 ]; then
	packages+=,docker.io
else
	box_name=devbundle/devbox-nodocker
	variant="devbundle test box (no docker)"
fi
memory=1024
if [ "$kubernetes" = 1 ]; then
	# containerd comes with docker.io; etcd, CNI plugins and openssl (the
	# guest makes its PKI) for the cluster; conntrack and iptables (also a
	# docker.io dependency) for the bridge CNI's masquerading.
	packages+=,containerd,runc,etcd-server,containernetworking-plugins,conntrack,iptables,openssl
	box_name=devbundle/devbox-kubernetes
	variant="devbundle test box (kubernetes $k8s_version)"
	memory=2560
fi

mirror=$(debian_mirror)
log "debootstrap $SUITE from $mirror (variant minbase, no recommends)"
debootstrap_args=(--variant=minbase --include="$packages")
if [ -n "${DEVBUNDLE_BOX_DEB_CACHE:-}" ]; then
	mkdir -p "$DEVBUNDLE_BOX_DEB_CACHE"
	debootstrap_args+=(--cache-dir="$DEVBUNDLE_BOX_DEB_CACHE")
fi
if ! debootstrap "${debootstrap_args[@]}" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	[ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
	die "debootstrap failed (log above); check that $mirror is reachable or set DEVBUNDLE_BOX_MIRROR"
fi
# debootstrap unmounts the /proc and /sys it mounted in the root; make sure,
# because nothing of the host may end up in the image.
for m in "$root/proc" "$root/sys"; do
	while mountpoint -q "$m"; do umount -l "$m"; done
done
if awk -v r="$root/" 'index($5, r) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
	die "something is still mounted under $root after debootstrap; refusing to put it in the image"
fi
log "debootstrap done after $((SECONDS - started))s"

in_root() { chroot "$root" "$@"; }

# oci_image NAME LAYER OUT CMD writes OUT, a tar of an OCI image layout
# (the format `ctr images import` reads) with one uncompressed layer LAYER,
# Cmd CMD (a JSON array) and NAME as containerd's image name.
oci_image() {
	local name=$1 layer=$2 out=$3 cmd=$4 d lsum lsize csum csize msum msize
	d=$(mktemp -d "$work/oci.XXXXXX")
	mkdir -p "$d/blobs/sha256"
	lsum=$(sha256sum <"$layer" | cut -d' ' -f1)
	lsize=$(stat -c %s "$layer")
	cp "$layer" "$d/blobs/sha256/$lsum"
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$cmd" "$lsum" >"$d/config"
	csum=$(sha256sum <"$d/config" | cut -d' ' -f1)
	csize=$(stat -c %s "$d/config")
	mv "$d/config" "$d/blobs/sha256/$csum"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
		"$csum" "$csize" "$lsum" "$lsize" >"$d/manifest"
	msum=$(sha256sum <"$d/manifest" | cut -d' ' -f1)
	msize=$(stat -c %s "$d/manifest")
	mv "$d/manifest" "$d/blobs/sha256/$msum"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$msum" "$msize" "$name" "${name##*:}" >"$d/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
	tar -C "$d" --owner=0 --group=0 --numeric-owner -cf "$out" oci-layout index.json blobs
	chmod 0644 "$out"
	rm -rf "$d"
}

# Static files of the recipe, owned by root.
install_tree() {
	local src=$1 f mode
	while IFS= read -r -d '' f; do
		mode=0644
		[ -x "$src/$f" ] && mode=0755
		case "$f" in etc/sudoers.d/*) mode=0440 ;; esac
		install -D -o root -g root -m "$mode" "$src/$f" "$root/$f"
	done < <(cd "$src" && find . -type f -printf '%P\0')
}
install_tree "$here/files/common"
if [ "$docker" = 1 ]; then
	install_tree "$here/files/docker"
fi
if [ "$kubernetes" = 1 ]; then
	install_tree "$here/files/kubernetes"
fi

log "configuring the system"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
echo devbox >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdevbox\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# No fsck pass: the root is new with every VM and fsck costs seconds of
# every boot under software emulation (the kernel mounts it rw directly).
printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t0\n' "$root_uuid" >"$root/etc/fstab"
# No DNS: the VM reaches nothing outside the host, and nothing copied from
# the build host may leak into the image.
printf '# devbundle test box: no DNS server is configured.\n' >"$root/etc/resolv.conf"

# os-release with the variant lines devbundle reports as the box version.
rm -f "$root/etc/os-release"
{
	cat "$root/usr/lib/os-release"
	printf 'VARIANT="%s"\nVARIANT_ID=devbundle-testbox\nVARIANT_VERSION=%s\n' "$variant" "$RECIPE_VERSION"
} >"$root/etc/os-release"
chmod 0644 "$root/etc/os-release"

in_root systemctl enable --quiet systemd-networkd.service devbundle-ssh-hostkeys.service
# Jobs that would run apt, fstrim or e2scrub in the background of a test
# under software emulation.
in_root systemctl mask --quiet apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
	e2scrub_all.timer e2scrub_reap.service fstrim.timer
# Early-boot work a VM without EFI, graphics, device-mapper, loop or FUSE
# devices does not need: each costs seconds before sysinit.target (and so
# before sshd) under software emulation.
in_root systemctl mask --quiet systemd-pstore.service modprobe@efi_pstore.service \
	modprobe@drm.service modprobe@dm_mod.service modprobe@loop.service modprobe@fuse.service

groups=
if [ "$docker" = 1 ]; then
	groups=docker
	in_root systemctl enable --quiet devbundle-hello.service
	# The root of devbundle/hello: busybox-static and the two links it needs.
	hello=$work/hello-root
	mkdir -p "$hello/bin" "$root/usr/share/devbundle"
	cp "$root/usr/bin/busybox" "$hello/bin/busybox"
	ln -s busybox "$hello/bin/sh"
	ln -s busybox "$hello/bin/echo"
	tar -C "$hello" --owner=0 --group=0 --numeric-owner -cf "$root/usr/share/devbundle/hello-rootfs.tar" bin
	chmod 0644 "$root/usr/share/devbundle/hello-rootfs.tar"
fi

if [ "$kubernetes" = 1 ]; then
	log "adding Kubernetes $k8s_version"
	for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
		install -o root -g root -m 0755 "$k8s_bins/$b" "$root/usr/local/bin/$b"
	done
	# Nothing of the cluster runs at boot: the kubernetes service starts it.
	# containerd stays enabled, docker.service needs it.
	in_root systemctl disable --quiet etcd.service
	# The pause and devbundle/hello images as OCI layouts, imported into
	# containerd's k8s.io namespace by devbundle-k8s-images.service.
	k8s_root=$work/k8s-image-root
	mkdir -p "$k8s_root/bin" "$root/usr/share/devbundle/k8s-images"
	cp "$root/usr/bin/busybox" "$k8s_root/bin/busybox"
	for l in sh echo sleep; do ln -s busybox "$k8s_root/bin/$l"; done
	tar -C "$k8s_root" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/k8s-layer.tar" bin
	# Both sleep in a shell that leaves at once on SIGTERM, so pods stop
	# without waiting out their grace period.
	oci_image docker.io/devbundle/pause:1.0 "$work/k8s-layer.tar" "$root/usr/share/devbundle/k8s-images/pause.tar" \
		'["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
	oci_image docker.io/devbundle/hello:latest "$work/k8s-layer.tar" "$root/usr/share/devbundle/k8s-images/hello.tar" \
		'["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do echo hello from devbundle; sleep 30 & wait $!; done"]'
fi

# The vagrant user, with a key pair of the recipe's own standing in for
# Vagrant's well-known insecure key.
in_root useradd --create-home --shell /bin/bash ${groups:+--groups "$groups"} --password '*' vagrant
in_root ssh-keygen -q -t ed25519 -N '' -C 'devbundle test box insecure key' -f /root/insecure_key
install -d -m 0700 "$root/home/vagrant/.ssh"
install -m 0600 "$root/root/insecure_key.pub" "$root/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh
mv "$root/root/insecure_key" "$root/root/insecure_key.pub" "$work/"

# Every VM gets its own identity on first boot: no host keys, an empty
# machine-id (systemd makes one and commits it), dbus reads the same file.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
rm -f "$root/var/lib/systemd/random-seed"

# Smaller image: package caches, lists, docs, manuals, translations, logs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
	"$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
	"$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
	"$root"/tmp/* "$root"/var/tmp/* "$root"/root/.bash_history
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/var/log" -type f -delete
rm -rf "$root/debootstrap"

kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n 1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$root/boot/$initrd" ] || die "no $initrd in the root: the kernel package did not build an initramfs"
log "configured after $((SECONDS - started))s (kernel ${kernel#vmlinuz-})"

# The disk: MBR with syslinux's boot code, partition 1 FAT (bootable) with
# syslinux, kernel and initrd, partition 2 the ext4 root made by mke2fs -d.
disk=$work/disk.raw
boot_sectors=$((BOOT_MIB * 2048))
root_start=$((BOOT_START + boot_sectors))
disk_sectors=$((DISK_GIB * 1024 * 1024 * 2))
root_sectors=$((disk_sectors - root_start))
truncate -s $((disk_sectors * 512)) "$disk"
sfdisk --quiet "$disk" <<EOF
label: dos
unit: sectors

start=$BOOT_START, size=$boot_sectors, type=c, bootable
start=$root_start, size=$root_sectors, type=83
EOF
dd if="$mbr_bin" of="$disk" bs=440 count=1 conv=notrunc status=none

log "making the ext4 root ($((root_sectors / 2048)) MiB) with mke2fs -d"
mke2fs -q -F -t ext4 -L devbox-root -U "$root_uuid" \
	-E offset=$((root_start * 512)),nodiscard -d "$root" "$disk" $((root_sectors / 2))k

log "making the FAT boot partition with syslinux"
fat=$work/boot.fat
mkfs.fat -F 16 -n DEVBOOT -h "$BOOT_START" -C "$fat" $((boot_sectors / 2)) >/dev/null
syslinux --install "$fat"
# The kernel: console on the first serial port (tests capture it to a file);
# AppArmor off, because loading profiles at boot costs ten seconds before
# sshd under software emulation, and dockerd refuses to start containers
# when the LSM is on but apparmor_parser is missing.
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT devbox
PROMPT 0
TIMEOUT 0
LABEL devbox
	LINUX /vmlinuz
	INITRD /initrd.img
	APPEND root=UUID=$root_uuid rw apparmor=0 console=ttyS0,115200n8
EOF
mcopy -i "$fat" "$root/boot/$kernel" ::/vmlinuz
mcopy -i "$fat" "$root/boot/$initrd" ::/initrd.img
mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
dd if="$fat" of="$disk" bs=512 seek="$BOOT_START" conv=notrunc status=none

log "converting to qcow2"
stage=$work/box
mkdir "$stage"
qemu-img convert -f raw -O qcow2 "$disk" "$stage/box.img"
rm -f "$disk" "$fat"

printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$DISK_GIB" >"$stage/metadata.json"
cat >"$stage/Vagrantfile" <<EOF
# Defaults of the devbundle test box; a project's Vagrantfile overrides them.
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    libvirt.memory = $memory
    libvirt.cpus = 2
  end
end
EOF

log "packing devbox.box"
if command -v pigz >/dev/null 2>&1; then gz=(pigz -6); else gz=(gzip -6); fi
tar -C "$stage" --owner=0 --group=0 --numeric-owner -cf - metadata.json Vagrantfile box.img | "${gz[@]}" >"$stage/devbox.box"
sum=$(sha256sum "$stage/devbox.box" | cut -d' ' -f1)

# The URL is a template: tests serve the folder over HTTP and replace
# {{BASE_URL}} with their server's address (tests/box/README.md).
cat >"$stage/catalog.json" <<EOF
{
  "name": "$box_name",
  "description": "$variant $RECIPE_VERSION (Debian 12)",
  "versions": [
    {
      "version": "$RECIPE_VERSION",
      "providers": [
        {
          "name": "libvirt",
          "url": "{{BASE_URL}}/devbox.box",
          "checksum_type": "sha256",
          "checksum": "$sum",
          "architecture": "amd64",
          "default_architecture": true
        }
      ]
    }
  ]
}
EOF
install -m 0600 "$work/insecure_key" "$stage/insecure_key"
install -m 0644 "$work/insecure_key.pub" "$stage/insecure_key.pub"
chmod 0644 "$stage/box.img" "$stage/metadata.json" "$stage/Vagrantfile" "$stage/devbox.box" "$stage/catalog.json"

outputs=(box.img metadata.json Vagrantfile devbox.box catalog.json insecure_key insecure_key.pub)
if [ "$kubernetes" = 1 ]; then
	# The host-side client for the tests: the cluster's own version.
	install -m 0755 "$k8s_bins/kubectl" "$stage/kubectl"
	outputs+=(kubectl)
fi
for f in "${outputs[@]}"; do
	mv -f "$stage/$f" "$outdir/$f"
done
log "done after $((SECONDS - started))s: $(du -h "$outdir/devbox.box" | cut -f1) devbox.box, $(du -h "$outdir/box.img" | cut -f1) box.img in $outdir"
