package libvirt

// installHint says what to do on Windows, where libvirt does not run.
func installHint(bool) string {
	return `libvirt does not run on Windows: use a Linux host through the libvirt URI "qemu+ssh://user@host/system", or the virtualbox provider`
}
