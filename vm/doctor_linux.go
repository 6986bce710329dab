package vm

import (
	"os"
	"strings"
)

// checkAccel tells whether KVM can accelerate guests here.
func checkAccel() CheckResult {
	r := CheckResult{Name: "hardware acceleration"}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		r.Status, r.Detail = CheckWarn, "/dev/kvm is not usable ("+err.Error()+"): VMs run in software emulation (TCG), several times slower"
		r.Fix = "enable virtualization in the firmware, load kvm_intel or kvm_amd, and add yourself to the kvm group"
		return r
	}
	_ = f.Close()
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	flags := ""
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if strings.HasPrefix(line, "flags") {
			flags = " " + line + " "
			break
		}
	}
	if !strings.Contains(flags, " vmx ") && !strings.Contains(flags, " svm ") {
		r.Status = CheckWarn
		r.Detail = "/dev/kvm exists but the CPU shows neither vmx nor svm: a paravirtual KVM that hangs stock guest kernels; devbundle uses software emulation (TCG)"
		r.Fix = "run devbundle on a host with nested virtualization enabled for full speed"
		return r
	}
	r.Status, r.Detail = CheckOK, "KVM is usable"
	return r
}
