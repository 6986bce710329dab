package libvirt

// installHint says how to get a local daemon running on macOS.
func installHint(bool) string {
	return `install it with "brew install libvirt qemu", then start it with "brew services start libvirt"`
}
