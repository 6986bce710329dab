package libvirt

import "os"

// arpAddress looks mac up in the kernel's ARP table.
func arpAddress(mac string) string {
	data, err := os.ReadFile("/proc/net/arp")
	if err != nil {
		return ""
	}
	return parseARP(string(data), mac)
}
