package virtualbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/vm"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseMachineReadable(t *testing.T) {
	out := readTestdata(t, "showvminfo-windows.txt")
	for _, nl := range []string{"\n", "\r\n"} { // Windows consoles may add CRs
		info, err := parseMachineReadable(strings.ReplaceAll(out, "\n", nl))
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != "devbundle-default-5e0c2a91" || info.UUID != "6b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e" || info.State != "running" {
			t.Errorf("info = %+v", info)
		}
		if want := `C:\Users\Ana Lee\AppData\Local\devbundle\machines\default\devbundle-default-5e0c2a91\devbundle-default-5e0c2a91.vbox`; info.CfgFile != want {
			t.Errorf("CfgFile = %q, want %q", info.CfgFile, want)
		}
		var got []string
		for _, r := range info.Forwards {
			got = append(got, r.String())
		}
		want := "ssh,tcp,127.0.0.1,50022,,22|docker,tcp,127.0.0.1,50376,,2376|registry,tcp,127.0.0.1,55000,,5000|kubernetes,tcp,127.0.0.1,56443,,6443"
		if strings.Join(got, "|") != want {
			t.Errorf("forwards %q, want %q (by index)", got, want)
		}
		for k, v := range map[string]string{
			"memory":                 "2048",
			`SATA Controller-0-0`:    `C:\Users\Ana Lee\AppData\Local\devbundle\machines\default\devbundle-default-5e0c2a91\box-disk001.vmdk`,
			"description":            "a \"quoted\" note\nover two lines",
			"hostonlyadapter2":       "VirtualBox Host-Only Ethernet Adapter",
			"storagecontrollertype0": "IntelAhci",
		} {
			if info.Raw[k] != v {
				t.Errorf("%s = %q, want %q", k, info.Raw[k], v)
			}
		}
	}
	for _, bad := range []string{"", "VBoxManage: error: whatever\n", "name=\"x\"\n"} {
		if _, err := parseMachineReadable(bad); err == nil {
			t.Errorf("parseMachineReadable(%q) succeeded", bad)
		}
	}
	if _, err := parseMachineReadable("UUID=\"u\"\nVMState=\"poweroff\"\nForwarding(0)=\"ssh,tcp,127.0.0.1,abc,,22\"\n"); err == nil {
		t.Error("a Forwarding rule with a bad port was accepted")
	}
}

func FuzzParseMachineReadable(f *testing.F) {
	f.Add("UUID=\"u\"\nVMState=\"running\"\nForwarding(0)=\"a,tcp,,1,,2\"\n")
	f.Add(`"k\"ey"="va\\lue\n"`)
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseMachineReadable(s)
		if err == nil && (info.UUID == "" || info.State == "") {
			t.Errorf("accepted %q without UUID or VMState", s)
		}
	})
}

func TestMapState(t *testing.T) {
	for in, want := range map[string]vm.State{
		"running": vm.StateRunning, "starting": vm.StateRunning, "stopping": vm.StateRunning,
		"poweroff": vm.StateHalted, "aborted": vm.StateHalted, "saved": vm.StateHalted,
		"paused": vm.StatePaused, "gurumeditation": vm.StateUnknown, "stuck": vm.StateUnknown, "": vm.StateUnknown,
	} {
		if got := mapState(in); got != want {
			t.Errorf("mapState(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseListVMs(t *testing.T) {
	out := "\"devbundle-default-5e0c2a91\" {6b7c8d9e-1f2a-4b3c-8d4e-5f6a7b8c9d0e}\r\n" +
		"\"my \"odd\" vm\" {11111111-2222-4333-8444-555555555555}\n" +
		"<inaccessible> {22222222-2222-4333-8444-555555555555}\n"
	got := parseListVMs(out)
	if len(got) != 2 || got[0].Name != "devbundle-default-5e0c2a91" || got[1].Name != `my "odd" vm` || got[1].UUID != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("parseListVMs = %+v", got)
	}
}

func TestParseDryRun(t *testing.T) {
	a, err := parseDryRun(readTestdata(t, "import-dryrun-two-disks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Systems != 1 || a.Name != "centos-7.1-1_1700000000000_37245" || len(a.Disks) != 2 {
		t.Errorf("appliance = %+v", a)
	}
	want := []hardDiskUnit{
		{Unit: 14, Source: "centos-7-1-1.x86_64.vmdk", Target: "/Users/ana/VirtualBox VMs/centos-7.1-1_1700000000000_37245/centos-7-1-1.x86_64.vmdk", Capacity: 64 << 30},
		{Unit: 15, Source: "data, spare.vmdk", Target: "/Users/ana/VirtualBox VMs/a, b/data, spare.vmdk", Capacity: 10 << 30},
	}
	if len(a.HardDisks) != 2 || a.HardDisks[0] != want[0] || a.HardDisks[1] != want[1] {
		t.Errorf("hard disks %+v\nwant %+v", a.HardDisks, want)
	}
	if err := a.check("box.ovf"); err != nil {
		t.Error(err)
	}

	for name, out := range map[string]string{
		"no system":     "Disks:\n  vmdisk1\t1\t-1\tfmt\tbox.vmdk\t-1\t-1\t\n",
		"bad capacity":  "Disks:\n  vmdisk1\tlots\t-1\tfmt\tbox.vmdk\t-1\t-1\t\n\nVirtual system 0:\n",
		"bad hard disk": "Virtual system 0:\n 5: Hard disk image: box.vmdk\n",
	} {
		if _, err := parseDryRun(out); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	two, err := parseDryRun("Virtual system 0:\n 0: Suggested VM name \"a\"\nVirtual system 1:\n 0: Suggested VM name \"b\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := two.check("box.ovf"); err == nil || !strings.Contains(err.Error(), "2 virtual machines") || !strings.Contains(err.Error(), "no hard disk") {
		t.Errorf("check of two disk-less systems: %v", err)
	}
}

func FuzzParseDryRun(f *testing.F) {
	f.Add("Virtual system 0:\n 3: Hard disk image: source image=a, target path=b, controller=1;channel=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseDryRun(s)
		if err != nil {
			return
		}
		for _, hd := range a.HardDisks {
			if hd.Source == "" {
				t.Errorf("hard disk with no source from %q", s)
			}
		}
	})
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"080027D14C66": "080027D14C66", "08:00:27:d1:4c:66": "080027D14C66",
		"08-00-27-D1-4C-66": "080027D14C66", " 0800.27d1.4c66 ": "080027D14C66",
	} {
		if got, err := normalizeMAC(in); err != nil || got != want {
			t.Errorf("normalizeMAC(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "080027D14C6", "080027D14C667", "08002ZD14C66", "010027D14C66"} {
		if got, err := normalizeMAC(bad); err == nil {
			t.Errorf("normalizeMAC(%q) = %q", bad, got)
		}
	}
}

func TestOwnVMName(t *testing.T) {
	for name, want := range map[string]bool{
		"devbundle-a-0123abcd": true, "devbundle-a-b-0123abcd": false, "devbundle-a-0123abc": false,
		"devbundle-a-0123abcz": false, "devbundle-ab-0123abcd": false, "other-a-0123abcd": false,
	} {
		if got := ownVMName(name, "a"); got != want {
			t.Errorf("ownVMName(%q, a) = %v", name, got)
		}
	}
	n, err := vmName("a")
	if err != nil || !ownVMName(n, "a") {
		t.Errorf("vmName = %q, %v", n, err)
	}
}
