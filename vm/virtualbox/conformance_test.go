package virtualbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/providertest"
	"github.com/devbundle/devbundle/vm/virtualbox/internal/fakevbox"
)

// The provider passes the conformance suite against the fake VBoxManage:
// the whole lifecycle runs, the guest checks are skipped (the fake boots
// nothing). The fake keeps sessions locked for one command after each
// power-off, as VirtualBox does while a VM process exits, so the seam's
// retries are exercised too.
func TestConformanceWithFakeVBoxManage(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{UnlockCalls: 1, ACPIDelayMS: 100})
	var dirs []string
	providertest.Run(t,
		func(t *testing.T) vm.Provider { return f.provider(t) },
		func(t *testing.T) vm.Spec {
			dir := t.TempDir()
			dirs = append(dirs, dir)
			return vm.Spec{
				Name: "suite", Dir: dir, BoxOVF: testBox(t), BaseMAC: "08:00:27:1a:2b:3c",
				Disks: []vm.Disk{{Path: filepath.Join(filepath.Dir(testBox(t)), "box-disk001.vmdk"), Format: "vmdk", Key: "test/box-disk001.vmdk"}},
				CPUs:  2, MemoryMiB: 768, DiskGiB: 40,
				Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}, {Name: "docker", GuestPort: 2376}},
			}
		},
		providertest.Options{NoGuest: true, SSH: true, HaltTimeout: 20 * time.Second})
	// The suite destroyed both machines: nothing may be left.
	func() {
		st, err := fakevbox.Load(f.state)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.VMs) != 0 {
			t.Errorf("VMs left registered: %+v", st.VMs)
		}
		for _, d := range dirs {
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				t.Errorf("left in machine folder %s: %s", d, e.Name())
			}
		}
		var acpi, retried bool
		calls := f.calls(t)
		t.Logf("the %d VBoxManage calls of the suite:\n%s", len(calls), strings.Join(calls, "\n"))
		for i, c := range calls {
			acpi = acpi || strings.Contains(c, `"acpipowerbutton"`)
			retried = retried || i > 0 && c == calls[i-1] && strings.Contains(c, `"unregistervm"`)
		}
		if !acpi || !retried {
			t.Errorf("the suite never pressed the ACPI button (%v) or never retried a locked unregistervm (%v):\n%s", acpi, retried, strings.Join(calls, "\n"))
		}
	}()
}
