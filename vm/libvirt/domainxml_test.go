package libvirt

import (
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// roundTrip marshals a domain and parses the document back, as libvirt
// would read it.
func roundTrip(t *testing.T, d *libvirtxml.Domain) (*libvirtxml.Domain, string) {
	t.Helper()
	doc, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back libvirtxml.Domain
	if err := back.Unmarshal(doc); err != nil {
		t.Fatalf("parse generated XML: %v\n%s", err, doc)
	}
	return &back, doc
}

func testSpec(mode string) domainSpec {
	return domainSpec{
		Name:       "devbundle-m1",
		Accel:      AccelTCG,
		CPUs:       2,
		MemoryMiB:  1536,
		Disks:      []string{"/pool/devbundle-m1-vda.qcow2", "/pool/devbundle-m1-vdb.qcow2"},
		ConsoleLog: "/pool/devbundle-m1-console.log",
		CPUMaximum: true,
		Net: netSpec{Mode: mode, Forwards: []vm.Forward{
			{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40022},
			{Name: "docker", GuestPort: 2376, HostIP: "127.0.0.1", HostPort: 40376},
		}},
	}
}

func TestBuildDomainHostfwd(t *testing.T) {
	d, err := buildDomain(testSpec(netHostfwd))
	if err != nil {
		t.Fatal(err)
	}
	got, doc := roundTrip(t, d)
	if !strings.Contains(doc, `xmlns="http://libvirt.org/schemas/domain/qemu/1.0"`) && !strings.Contains(doc, "http://libvirt.org/schemas/domain/qemu/1.0") {
		t.Errorf("document lacks the qemu namespace:\n%s", doc)
	}
	if got.Type != "qemu" || got.Name != "devbundle-m1" {
		t.Errorf("type %q name %q", got.Type, got.Name)
	}
	if got.Memory.Value != 1536 || got.Memory.Unit != "MiB" || got.VCPU.Value != 2 {
		t.Errorf("memory %+v vcpu %+v", got.Memory, got.VCPU)
	}
	if got.OS.Type.Type != "hvm" || got.OS.Type.Machine != "pc" || got.OS.Type.Arch != "x86_64" {
		t.Errorf("os %+v", got.OS.Type)
	}
	if got.CPU == nil || got.CPU.Mode != "maximum" {
		t.Errorf("cpu %+v, want mode maximum under TCG", got.CPU)
	}
	if got.OnPoweroff != "destroy" || got.OnReboot != "restart" || got.OnCrash != "destroy" {
		t.Errorf("lifecycle actions %q %q %q", got.OnPoweroff, got.OnReboot, got.OnCrash)
	}
	if got.Features == nil || got.Features.ACPI == nil {
		t.Error("no ACPI: a halt could not ask the guest to power off")
	}
	disks := got.Devices.Disks
	if len(disks) != 2 {
		t.Fatalf("%d disks", len(disks))
	}
	for i, want := range []struct{ path, dev string }{{"/pool/devbundle-m1-vda.qcow2", "vda"}, {"/pool/devbundle-m1-vdb.qcow2", "vdb"}} {
		dk := disks[i]
		if dk.Source.File.File != want.path || dk.Target.Dev != want.dev || dk.Target.Bus != "virtio" || dk.Driver.Type != "qcow2" {
			t.Errorf("disk %d: %+v %+v %+v", i, dk.Source.File, dk.Target, dk.Driver)
		}
	}
	if len(got.Devices.Serials) != 1 || got.Devices.Serials[0].Source.File.Path != "/pool/devbundle-m1-console.log" ||
		got.Devices.Serials[0].Source.File.Append != "on" {
		t.Errorf("serial %+v", got.Devices.Serials)
	}
	if len(got.Devices.Consoles) != 1 || got.Devices.Consoles[0].Target.Type != "serial" {
		t.Errorf("console %+v", got.Devices.Consoles)
	}
	if len(got.Devices.RNGs) != 1 || got.Devices.RNGs[0].Model != "virtio" || got.Devices.RNGs[0].Backend.Random.Device != "/dev/urandom" {
		t.Errorf("rng %+v", got.Devices.RNGs)
	}
	if len(got.Devices.Interfaces) != 0 {
		t.Errorf("hostfwd mode has libvirt interfaces: %+v", got.Devices.Interfaces)
	}
	var args []string
	for _, a := range got.QEMUCommandline.Args {
		args = append(args, a.Value)
	}
	want := []string{
		"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40376-:2376",
		"-device", "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x10",
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("qemu args\n%q\nwant\n%q", args, want)
	}
	n := netOf(got)
	if n.Mode != netHostfwd || len(n.Forwards) != 2 || n.Forwards[1].HostPort != 40376 || n.Forwards[1].GuestPort != 2376 || n.Forwards[0].HostIP != "127.0.0.1" {
		t.Errorf("netOf = %+v", n)
	}
	if consoleLogOf(got) != "/pool/devbundle-m1-console.log" {
		t.Errorf("consoleLogOf = %q", consoleLogOf(got))
	}
	if p := diskPaths(got); len(p) != 2 || p[0] != "/pool/devbundle-m1-vda.qcow2" {
		t.Errorf("diskPaths = %q", p)
	}
}

func TestBuildDomainKVM(t *testing.T) {
	s := testSpec(netHostfwd)
	s.Accel = AccelKVM
	d, err := buildDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := roundTrip(t, d)
	if got.Type != "kvm" || got.CPU == nil || got.CPU.Mode != "host-passthrough" {
		t.Fatalf("type %q cpu %+v", got.Type, got.CPU)
	}
	if accelOf(got.Type) != AccelKVM || accelOf("qemu") != AccelTCG {
		t.Fatal("accelOf does not read domain types back")
	}
	s.Accel, s.CPUMaximum = AccelTCG, false
	d, _ = buildDomain(s)
	if got, _ := roundTrip(t, d); got.CPU != nil {
		t.Fatalf("cpu %+v without the maximum mode", got.CPU)
	}
}

func TestBuildDomainPasst(t *testing.T) {
	d, err := buildDomain(testSpec(netPasst))
	if err != nil {
		t.Fatal(err)
	}
	got, doc := roundTrip(t, d)
	if got.QEMUCommandline != nil {
		t.Errorf("passt mode passes QEMU arguments: %+v", got.QEMUCommandline)
	}
	if len(got.Devices.Interfaces) != 1 {
		t.Fatalf("interfaces %+v", got.Devices.Interfaces)
	}
	iface := got.Devices.Interfaces[0]
	if iface.Source.User == nil || iface.Backend == nil || iface.Backend.Type != "passt" || iface.Model.Type != "virtio" {
		t.Errorf("interface %+v\n%s", iface, doc)
	}
	if len(iface.PortForward) != 2 {
		t.Fatalf("portForward %+v", iface.PortForward)
	}
	pf := iface.PortForward[0]
	if pf.Proto != "tcp" || pf.Address != "127.0.0.1" || len(pf.Ranges) != 1 || pf.Ranges[0].Start != 40022 || pf.Ranges[0].To != 22 {
		t.Errorf("portForward[0] %+v", pf)
	}
	if !strings.Contains(doc, `<interface type="user">`) || !strings.Contains(doc, `<backend type="passt">`) {
		t.Errorf("document:\n%s", doc)
	}
	n := netOf(got)
	if n.Mode != netPasst || len(n.Forwards) != 2 || n.Forwards[0].HostPort != 40022 || n.Forwards[0].GuestPort != 22 {
		t.Errorf("netOf = %+v", n)
	}
}

func TestBuildDomainNetwork(t *testing.T) {
	s := testSpec(netLibvirt)
	s.Net = netSpec{Mode: netLibvirt, Network: "devnet", MAC: machineMAC("m1")}
	d, err := buildDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := roundTrip(t, d)
	if got.QEMUCommandline != nil || len(got.Devices.Interfaces) != 1 {
		t.Fatalf("qemu %+v interfaces %+v", got.QEMUCommandline, got.Devices.Interfaces)
	}
	iface := got.Devices.Interfaces[0]
	if iface.Source.Network == nil || iface.Source.Network.Network != "devnet" || iface.MAC.Address != machineMAC("m1") {
		t.Errorf("interface %+v", iface)
	}
	n := netOf(got)
	if n.Mode != netLibvirt || n.Network != "devnet" || n.MAC != machineMAC("m1") {
		t.Errorf("netOf = %+v", n)
	}
	s.Net.MAC = ""
	if _, err := buildDomain(s); err == nil {
		t.Error("network mode without a MAC was accepted")
	}
}

func TestBuildDomainRejects(t *testing.T) {
	for name, mutate := range map[string]func(*domainSpec){
		"no disks":           func(s *domainSpec) { s.Disks = nil },
		"no cpus":            func(s *domainSpec) { s.CPUs = 0 },
		"forward on 0.0.0.0": func(s *domainSpec) { s.Net.Forwards[0].HostIP = "0.0.0.0" },
		"host port 0":        func(s *domainSpec) { s.Net.Forwards[0].HostPort = 0 },
		"unknown wiring":     func(s *domainSpec) { s.Net.Mode = "bridge" },
	} {
		t.Run(name, func(t *testing.T) {
			s := testSpec(netHostfwd)
			mutate(&s)
			if _, err := buildDomain(s); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// SetForwards edits an existing definition: the old forwards go, every
// other element stays.
func TestApplyNetReplaces(t *testing.T) {
	d, err := buildDomain(testSpec(netHostfwd))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := roundTrip(t, d)
	n := netOf(got)
	n.Forwards = []vm.Forward{{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 41022}}
	if err := applyNet(got, n); err != nil {
		t.Fatal(err)
	}
	again, _ := roundTrip(t, got)
	if f := netOf(again).Forwards; len(f) != 1 || f[0].HostPort != 41022 {
		t.Fatalf("forwards after applyNet: %+v", f)
	}
	if len(again.Devices.Disks) != 2 || len(again.Devices.RNGs) != 1 || again.Memory.Value != 1536 {
		t.Fatal("applyNet lost other parts of the domain")
	}
}

func TestParseUserNetdev(t *testing.T) {
	fw, ok := parseUserNetdev("user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:53-:53,hostfwd=tcp:127.0.0.1:x-:1")
	if !ok || len(fw) != 1 || fw[0] != (vm.Forward{HostIP: "127.0.0.1", HostPort: 2222, GuestPort: 22}) {
		t.Fatalf("parseUserNetdev = %+v, %v", fw, ok)
	}
	if _, ok := parseUserNetdev("virtio-net-pci,netdev=net0"); ok {
		t.Fatal("a -device value was taken for a netdev")
	}
}
