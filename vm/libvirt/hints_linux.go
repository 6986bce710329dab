package libvirt

// installHint says how to get a local daemon running on Linux.
func installHint(session bool) string {
	if session {
		return `start your own daemon with "libvirtd -d" (or "systemctl --user start virtqemud.socket"); install it with "apt-get install libvirt-daemon-system" (Debian, Ubuntu) or "dnf install libvirt-daemon-kvm" (Fedora)`
	}
	return `install it with "apt-get install libvirt-daemon-system" (Debian, Ubuntu) or "dnf install libvirt-daemon-kvm" (Fedora), then start it with "systemctl start libvirtd" (or "libvirtd -d" where systemd does not run)`
}
