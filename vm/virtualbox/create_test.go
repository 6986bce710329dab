package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/virtualbox/internal/fakevbox"
)

func testSpec(t *testing.T) vm.Spec {
	return vm.Spec{
		Name: "default", Dir: t.TempDir(), BoxOVF: testBox(t), BaseMAC: "0800271A2B3C",
		CPUs: 3, MemoryMiB: 2048,
		Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}, {Name: "docker", GuestPort: 2376}},
	}
}

// Create imports the box into the machine's folder under a unique name,
// replaces the box's NAT rule with the machine's forwards on 127.0.0.1,
// and sets CPUs, memory, the base MAC and the console log.
func TestCreate(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	spec := testSpec(t)
	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fakevbox.Load(f.state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.VMs) != 1 {
		t.Fatalf("%d VMs registered", len(st.VMs))
	}
	v := st.VMs[0]
	if c.ID != v.UUID || c.Accel != Accel || len(c.Warnings) != 0 {
		t.Errorf("Created = %+v for VM %s", c, v.UUID)
	}
	if !ownVMName(v.Name, "default") {
		t.Errorf("VM name %q is not devbundle-default-<8 hex>", v.Name)
	}
	vmDir := filepath.Join(spec.Dir, v.Name)
	if v.CfgFile != filepath.Join(vmDir, v.Name+".vbox") {
		t.Errorf("settings file %q, want it in %q", v.CfgFile, vmDir)
	}
	if len(v.Disks) != 1 || v.Disks[0].Path != filepath.Join(vmDir, "box-disk001.vmdk") || v.Disks[0].Format != "VMDK" {
		t.Errorf("disks %+v, want box-disk001.vmdk in %q", v.Disks, vmDir)
	}
	if _, err := os.Stat(v.Disks[0].Path); err != nil {
		t.Errorf("disk not in the machine folder: %v", err)
	}
	if v.CPUs != 3 || v.MemoryMB != 2048 {
		t.Errorf("cpus %d memory %d", v.CPUs, v.MemoryMB)
	}
	if n := v.NICs[0]; n.Type != "nat" || n.MAC != "0800271A2B3C" {
		t.Errorf("nic1 %+v", n)
	}
	if v.NICs[1].Type != "none" {
		t.Errorf("nic2 %+v without a host-only option", v.NICs[1])
	}
	var rules []string
	for _, r := range v.NICs[0].Rules {
		rules = append(rules, r.String())
	}
	want := fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22|docker,tcp,127.0.0.1,%d,,2376", c.Forwards[0].HostPort, c.Forwards[1].HostPort)
	if strings.Join(rules, "|") != want {
		t.Errorf("NAT rules %q, want %q (the box's own ssh rule on 2222 replaced)", rules, want)
	}
	if c.ConsoleLog != filepath.Join(vmDir, "console.log") || v.UART != (fakevbox.UART{Enabled: true, IOBase: "0x3F8", IRQ: 4, Mode: "file", Path: c.ConsoleLog}) {
		t.Errorf("console %q, uart %+v", c.ConsoleLog, v.UART)
	}
	for _, call := range f.calls(t) {
		if strings.Contains(call, "importtovdi") || strings.Contains(call, "modifymedium") {
			t.Errorf("no disk growth asked, but: %s", call)
		}
	}

	// The machine's state as the Manager records it works with the rest.
	m := &vm.Machine{Name: spec.Name, ID: c.ID, Forwards: c.Forwards, ConsoleLog: c.ConsoleLog}
	if s, err := p.State(ctx, m); err != nil || s != vm.StateHalted {
		t.Errorf("State = %q, %v", s, err)
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(spec.Dir); len(entries) != 0 {
		t.Errorf("machine folder not empty after destroy: %v", entries)
	}
}

// A bigger disk than the box's is imported as VDI and resized; a smaller
// one is left alone (VirtualBox cannot shrink).
func TestCreateGrowsDisk(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	spec := testSpec(t)
	spec.DiskGiB = 50
	if _, err := p.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	st, _ := fakevbox.Load(f.state)
	d := st.VMs[0].Disks[0]
	if d.Format != "VDI" || d.CapacityMB != 50*1024 || filepath.Ext(d.Path) != ".vdi" {
		t.Errorf("disk %+v, want a 50 GiB VDI", d)
	}

	spec = testSpec(t)
	spec.Name, spec.DiskGiB = "small", 10 // the box has 20
	if _, err := p.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	st, _ = fakevbox.Load(f.state)
	if d := st.VMs[1].Disks[0]; d.Format != "VMDK" || d.CapacityMB != 20*1024 {
		t.Errorf("disk %+v, want the box's 20 GiB VMDK", d)
	}
}

func TestCreateHostOnly(t *testing.T) {
	for _, ho := range []HostOnly{{Adapter: "vboxnet0"}, {Network: "HostNetwork"}} {
		f := newFakeVBox(t, fakevbox.Knobs{})
		p := f.provider(t)
		p.opts.HostOnly = ho
		c, err := p.Create(context.Background(), testSpec(t))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fakevbox.Load(f.state)
		n := st.VMs[0].NICs[1]
		if ho.Adapter != "" && (n.Type != "hostonly" || n.HostOnlyAdapter != "vboxnet0") ||
			ho.Network != "" && (n.Type != "hostonlynet" || n.HostOnlyNet != "HostNetwork") {
			t.Errorf("host-only %+v gave nic2 %+v", ho, n)
		}
		// The adapter's MAC, as `up` looks for it in the guest.
		mac, ok, err := p.HostOnlyMAC(context.Background(), &vm.Machine{Name: "default", ID: c.ID})
		if err != nil || !ok || !strings.EqualFold(strings.ReplaceAll(mac, ":", ""), n.MAC) || len(mac) != 17 {
			t.Errorf("HostOnlyMAC = %q, %v, %v; nic2 has %q", mac, ok, err, n.MAC)
		}
	}
	// Without a host-only adapter there is none to look for.
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	c, err := p.Create(context.Background(), testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if mac, ok, err := p.HostOnlyMAC(context.Background(), &vm.Machine{Name: "default", ID: c.ID}); ok || err != nil {
		t.Errorf("HostOnlyMAC without the adapter = %q, %v, %v", mac, ok, err)
	}
}

// Every problem of a spec is reported at once, before VBoxManage runs.
func TestCreateValidates(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	before := len(f.calls(t))
	_, err := p.Create(context.Background(), vm.Spec{Name: "-bad", BoxOVF: filepath.Join(t.TempDir(), "box.ovf"), CPUs: 0, MemoryMiB: 64, DiskGiB: -1, BaseMAC: "0900271A2B3C"})
	if err == nil {
		t.Fatal("bad spec accepted")
	}
	for _, want := range []string{"machine name", "box file", "machine folder", "CPU count", "memory 64 MiB", "disk size", "multicast"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if after := len(f.calls(t)); after != before {
		t.Errorf("VBoxManage ran %d times for a bad spec", after-before)
	}
	if _, err := p.Create(context.Background(), vm.Spec{Name: "x", Dir: t.TempDir(), CPUs: 1, MemoryMiB: 512}); err == nil || !strings.Contains(err.Error(), "not a VirtualBox box") {
		t.Errorf("spec without box.ovf: %v", err)
	}
}

// A create that fails after the import leaves nothing registered and no
// folder behind.
func TestCreateFailureCleansUp(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	spec := testSpec(t)
	// Two forwards with one host port: the fake refuses the second rule.
	spec.Forwards = []vm.Forward{{Name: "ssh", GuestPort: 22, HostPort: 40022}, {Name: "docker", GuestPort: 2376, HostPort: 40022}}
	_, err := p.Create(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "A NAT rule for this host port and this host IP already exists") {
		t.Fatalf("Create with clashing host ports: %v", err)
	}
	st, _ := fakevbox.Load(f.state)
	if len(st.VMs) != 0 {
		t.Errorf("VMs left: %+v", st.VMs)
	}
	if entries, _ := os.ReadDir(spec.Dir); len(entries) != 0 {
		t.Errorf("machine folder not empty: %v", entries)
	}
}

// A machine whose create was interrupted before its ID was recorded is
// found by name, reported and destroyed; with MachinesDir set, a VM of the
// same name in another data folder is not touched.
func TestInterruptedCreateLeftovers(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	root := t.TempDir()
	spec := testSpec(t)
	spec.Dir = filepath.Join(root, "default")
	other := testSpec(t) // same machine name, another data folder
	if _, err := p.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	m := &vm.Machine{Name: "default"} // no ID recorded
	p.opts.MachinesDir = root
	if s, err := p.State(ctx, m); err != nil || s != vm.StateHalted {
		t.Fatalf("State of the leftover = %q, %v", s, err)
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	st, _ := fakevbox.Load(f.state)
	if len(st.VMs) != 1 || !strings.HasPrefix(st.VMs[0].CfgFile, other.Dir) {
		t.Fatalf("after destroying the leftover: %+v", st.VMs)
	}
	if s, err := p.State(ctx, m); err != nil || s != vm.StateNotCreated {
		t.Errorf("State after = %q, %v", s, err)
	}
	// Without MachinesDir the name alone decides.
	p.opts.MachinesDir = ""
	if s, err := p.State(ctx, m); err != nil || s != vm.StateHalted {
		t.Errorf("State by name only = %q, %v", s, err)
	}
}

// Halt waits for the guest to power off after the ACPI button and, when it
// does not by the deadline, powers it off.
func TestHaltFallsBackToPowerOff(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{IgnoreACPI: true})
	p := f.provider(t)
	ctx := context.Background()
	c, err := p.Create(ctx, testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	m := &vm.Machine{Name: "default", ID: c.ID}
	if err := p.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Halt(hctx, m, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.State(ctx, m); s != vm.StateHalted {
		t.Errorf("state after halt: %q", s)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("halt took %s: it did not wait for the guest", time.Since(start))
	}
	calls := strings.Join(f.calls(t), "\n")
	if !strings.Contains(calls, `"acpipowerbutton"`) || !strings.Contains(calls, `"poweroff"`) {
		t.Errorf("calls:\n%s", calls)
	}

	// A cancelled (not timed out) halt does not power off.
	if err := p.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, ccancel)
	if err := p.Halt(cctx, m, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled halt: %v", err)
	}
	if s, _ := p.State(ctx, m); s != vm.StateRunning {
		t.Errorf("state after a cancelled halt: %q", s)
	}
}

// Start refuses when a forward's host port is taken, before VirtualBox
// would start the VM with that forward dead.
func TestStartRefusesBusyPort(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	c, err := p.Create(ctx, testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := listenOn(c.Forwards[1].HostPort)
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", c.Forwards[1].HostPort, err)
	}
	defer l.Close()
	err = p.Start(ctx, &vm.Machine{Name: "default", ID: c.ID})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "docker") {
		t.Errorf("Start with a busy port: %v", err)
	}
}

// Operations on a machine whose VM is gone say so with vm.ErrNotFound.
func TestGoneVM(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	m := &vm.Machine{Name: "default", ID: "0f0e0d0c-0b0a-4908-8706-050403020100"}
	if s, err := p.State(ctx, m); err != nil || s != vm.StateNotCreated {
		t.Errorf("State = %q, %v", s, err)
	}
	for name, op := range map[string]func() error{
		"Start":       func() error { return p.Start(ctx, m) },
		"Halt":        func() error { return p.Halt(ctx, m, false) },
		"SetForwards": func() error { _, err := p.SetForwards(ctx, m, nil); return err },
	} {
		if err := op(); !errors.Is(err, vm.ErrNotFound) || !strings.Contains(err.Error(), "devbundle destroy") {
			t.Errorf("%s of a gone VM: %v", name, err)
		}
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Errorf("Destroy of a gone VM: %v", err)
	}
}

// Forwards change only while the machine is off.
func TestSetForwardsRefusedWhileRunning(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	c, err := p.Create(ctx, testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	m := &vm.Machine{Name: "default", ID: c.ID}
	if err := p.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetForwards(ctx, m, c.Forwards); err == nil || !strings.Contains(err.Error(), "devbundle halt") {
		t.Errorf("SetForwards while running: %v", err)
	}
	if err := p.Halt(ctx, m, true); err != nil {
		t.Fatal(err)
	}
	// Kept ports stay, a new forward gets one.
	want := append(c.Forwards[:1:1], vm.Forward{Name: "kubernetes", GuestPort: 6443})
	got, err := p.SetForwards(ctx, m, want)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != c.Forwards[0] || got[1].HostPort == 0 || got[1].HostIP != "127.0.0.1" {
		t.Errorf("SetForwards = %+v", got)
	}
	st, _ := fakevbox.Load(f.state)
	if rules := st.VMs[0].NICs[0].Rules; len(rules) != 2 || rules[1].Name != "kubernetes" {
		t.Errorf("rules %+v", rules)
	}
}

// A running VM's forwards change at once through "controlvm natpf1": a
// new rule is added, a dropped one deleted, kept ones left alone; the
// fake refuses the same calls on a powered-off VM, where SetForwardsLive
// takes the modifyvm path.
func TestSetForwardsLiveWhileRunning(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	ctx := context.Background()
	c, err := p.Create(ctx, testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	m := &vm.Machine{Name: "default", ID: c.ID}
	if err := p.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Keep ssh, drop docker, add kubernetes.
	want := append(c.Forwards[:1:1], vm.Forward{Name: "kubernetes", GuestPort: 6443})
	got, err := p.SetForwardsLive(ctx, m, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != c.Forwards[0] || got[1].Name != "kubernetes" || got[1].HostPort == 0 {
		t.Fatalf("SetForwardsLive = %+v", got)
	}
	st, err := fakevbox.Load(f.state)
	if err != nil {
		t.Fatal(err)
	}
	v := st.VMs[0]
	if v.State != "running" {
		t.Errorf("VM state %q after a live change", v.State)
	}
	var names []string
	for _, r := range v.NICs[0].Rules {
		names = append(names, r.Name)
		if r.Name == "kubernetes" && (r.HostPort != got[1].HostPort || r.HostIP != "127.0.0.1" || r.GuestPort != 6443) {
			t.Errorf("kubernetes rule %+v", r)
		}
	}
	if strings.Join(names, ",") != "ssh,kubernetes" {
		t.Errorf("rules after the live change: %v", names)
	}
	// Powered off: the same call goes through modifyvm.
	if err := p.Halt(ctx, m, true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetForwardsLive(ctx, m, c.Forwards); err != nil {
		t.Fatalf("SetForwardsLive on a powered-off VM: %v", err)
	}
	st, _ = fakevbox.Load(f.state)
	if rules := st.VMs[0].NICs[0].Rules; len(rules) != 2 || rules[1].Name != "docker" {
		t.Errorf("rules after the powered-off change: %+v", rules)
	}
}
