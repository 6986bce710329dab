//go:build !linux && !darwin && !windows

package libvirt

// installHint says how to get a local daemon running.
func installHint(bool) string {
	return `install libvirt with your system's package manager and start libvirtd`
}
