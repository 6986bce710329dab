//go:build !linux

package vm

// checkAccel reports on hardware acceleration; on macOS and Windows the
// hypervisor (VirtualBox) brings its own.
func checkAccel() CheckResult {
	return CheckResult{Name: "hardware acceleration", Status: CheckOK, Detail: "provided by the hypervisor on this OS"}
}
