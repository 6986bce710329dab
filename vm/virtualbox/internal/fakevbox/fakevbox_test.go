package fakevbox

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every canned output names the VirtualBox documentation it follows.
func TestFixturesNameTheirSource(t *testing.T) {
	entries, err := fs.ReadDir(fixtures, "testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, _ := fs.ReadFile(fixtures, "testdata/"+e.Name())
		head := string(data[:min(len(data), 400)])
		if !strings.HasPrefix(head, "{{- /* Source: ") || !strings.Contains(head, "VirtualBox") {
			t.Errorf("%s does not start with a Source comment naming the VirtualBox documentation", e.Name())
		}
	}
}

type run struct {
	t   *testing.T
	dir string
}

func (r run) do(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb, r.dir)
	return out.String(), errb.String(), code
}

func (r run) ok(args ...string) string {
	r.t.Helper()
	out, errs, code := r.do(args...)
	if code != 0 || strings.Contains(errs, "error:") {
		r.t.Fatalf("%q: exit %d\n%s", args, code, errs)
	}
	return out
}

func (r run) refused(want string, args ...string) {
	r.t.Helper()
	_, errs, code := r.do(args...)
	if code == 0 || !strings.Contains(errs, "VBoxManage: error: ") || !strings.Contains(errs, want) {
		r.t.Errorf("%q: exit %d, stderr %q; want a refusal with %q", args, code, errs, want)
	}
}

func newRun(t *testing.T) (run, string) {
	r := run{t: t, dir: t.TempDir()}
	ovf, err := filepath.Abs("../../testdata/box/box.ovf")
	if err != nil {
		t.Fatal(err)
	}
	return r, ovf
}

// The fake refuses what VBoxManage refuses.
func TestRefusals(t *testing.T) {
	r, ovf := newRun(t)
	base := t.TempDir()
	r.refused("Could not find a registered machine named 'nope'", "showvminfo", "nope", "--machinereadable")
	r.refused("with UUID {0f0e0d0c-0b0a-4908-8706-050403020100}", "startvm", "0f0e0d0c-0b0a-4908-8706-050403020100", "--type", "headless")
	r.refused("Appliance read failed", "import", filepath.Join(base, "missing.ovf"), "--dry-run")
	r.ok("import", ovf, "--vsys", "0", "--vmname", "vm1", "--basefolder", base)
	r.refused("already exists", "import", ovf, "--vsys", "0", "--vmname", "vm1", "--basefolder", base)
	r.refused("Invalid resource index 3", "import", ovf, "--vsys", "0", "--vmname", "vm2", "--basefolder", base, "--unit", "3", "--disk", filepath.Join(base, "x.vmdk"))

	info := r.ok("showvminfo", "vm1", "--machinereadable")
	for _, want := range []string{`name="vm1"`, `VMState="poweroff"`, `Forwarding(0)="ssh,tcp,,2222,,22"`, `nic1="nat"`, `cpus=2`, `memory=1024`} {
		if !strings.Contains(info, want) {
			t.Errorf("showvminfo lacks %q:\n%s", want, info)
		}
	}
	r.refused("A NAT rule of this name already exists", "modifyvm", "vm1", "--natpf1", "ssh,tcp,127.0.0.1,2200,,22")
	r.refused("A NAT rule for this host port and this host IP already exists", "modifyvm", "vm1", "--natpf1", "web,tcp,,2222,,80")
	r.refused("A NAT rule of this name does not exist", "modifyvm", "vm1", "--natpf1", "delete", "web")
	r.refused("Invalid MAC address format", "modifyvm", "vm1", "--macaddress1", "0900271A2B3C")
	// All or nothing: the valid --cpus before the bad rule is not kept.
	r.refused("Invalid NAT rule", "modifyvm", "vm1", "--cpus", "4", "--natpf1", "web,tcp,,80")
	if info := r.ok("showvminfo", "vm1", "--machinereadable"); !strings.Contains(info, "cpus=2\n") {
		t.Errorf("a failed modifyvm changed settings:\n%s", info)
	}
	r.refused("Resize medium operation for this format is not implemented yet", "modifymedium", "disk", filepath.Join(base, "vm1", "box-disk001.vmdk"), "--resize", "40960")
	r.refused("is not currently running", "controlvm", "vm1", "acpipowerbutton")
	r.refused("is not currently running", "controlvm", "vm1", "poweroff")

	if out := r.ok("startvm", "vm1", "--type", "headless"); !strings.Contains(out, `VM "vm1" has been successfully started.`) {
		t.Errorf("startvm printed %q", out)
	}
	r.refused("is already locked by a session", "startvm", "vm1", "--type", "headless")
	r.refused("is already locked for a session", "modifyvm", "vm1", "--cpus", "1")
	r.refused("Cannot unregister the machine 'vm1' while it is locked", "unregistervm", "vm1", "--delete")
	r.ok("controlvm", "vm1", "poweroff")
	r.ok("unregistervm", "vm1", "--delete")
	if _, err := os.Stat(filepath.Join(base, "vm1")); !os.IsNotExist(err) {
		t.Errorf("VM folder left after unregistervm --delete: %v", err)
	}
	if out := r.ok("list", "vms"); out != "" {
		t.Errorf("list vms after delete: %q", out)
	}
	if data, err := os.ReadFile(filepath.Join(r.dir, UnknownFile)); err == nil {
		t.Errorf("known invocations were logged as unknown:\n%s", data)
	}
}

// The session stays locked for UnlockCalls commands after a power-off.
func TestUnlockDelay(t *testing.T) {
	r, ovf := newRun(t)
	if err := WriteKnobs(r.dir, Knobs{UnlockCalls: 2}); err != nil {
		t.Fatal(err)
	}
	r.ok("import", ovf, "--vsys", "0", "--vmname", "vm1", "--basefolder", t.TempDir())
	r.ok("startvm", "vm1", "--type", "headless")
	r.ok("controlvm", "vm1", "poweroff")
	r.refused("already locked for a session", "unregistervm", "vm1", "--delete")
	r.refused("already locked for a session", "modifyvm", "vm1", "--cpus", "1")
	r.ok("modifyvm", "vm1", "--cpus", "1")
}

// What the fake does not know fails and is logged for the test to see.
func TestUnknownInvocations(t *testing.T) {
	r, _ := newRun(t)
	for _, args := range [][]string{
		{"clonevm", "x"},
		{"list", "runningvms"},
		{"showvminfo", "x"},
		{"modifyvm", "x"}, // too short
		{"startvm", "x"},
		{"controlvm", "x", "savestate"},
	} {
		_, errs, code := r.do(args...)
		if code != 2 || !strings.Contains(errs, "VBoxManage: error: ") {
			t.Errorf("%q: exit %d, %q", args, code, errs)
		}
	}
	data, err := os.ReadFile(filepath.Join(r.dir, UnknownFile))
	if err != nil || strings.Count(string(data), "\n") != 6 {
		t.Errorf("unknown.log: %q, %v", data, err)
	}
}

func TestModifyVMOptionForms(t *testing.T) {
	r, ovf := newRun(t)
	r.ok("import", ovf, "--vsys=0", "--vmname=vm1", "--basefolder="+t.TempDir())
	r.ok("modifyvm", "vm1", "--cpus=3", "--memory", "2048", "--uart1", "0x3F8", "4", "--uartmode1", "file", filepath.Join(t.TempDir(), "c.log"))
	info := r.ok("showvminfo", "vm1", "--machinereadable")
	if !strings.Contains(info, "cpus=3\n") || !strings.Contains(info, "memory=2048\n") || !strings.Contains(info, `uart1="0x03f8,4"`) {
		t.Errorf("showvminfo:\n%s", info)
	}
}
