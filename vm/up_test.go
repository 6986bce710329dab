package vm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/iostreams"
)

// fakeProvider records calls; it stands in for a hypervisor in tests of
// the Manager's own decisions (the real provider is proved in the e2e tier).
type fakeProvider struct {
	state       State
	setForwards [][]Forward
	started     int
}

func (p *fakeProvider) Name() string { return "libvirt" }
func (p *fakeProvider) Create(context.Context, Spec) (Created, error) {
	return Created{}, errors.New("unexpected Create")
}
func (p *fakeProvider) Start(context.Context, *Machine) error { p.started++; return nil }
func (p *fakeProvider) Halt(context.Context, *Machine, bool) error {
	return errors.New("unexpected Halt")
}
func (p *fakeProvider) Destroy(context.Context, *Machine) error {
	return errors.New("unexpected Destroy")
}
func (p *fakeProvider) State(context.Context, *Machine) (State, error) { return p.state, nil }
func (p *fakeProvider) Close() error                                   { return nil }
func (p *fakeProvider) SetForwards(_ context.Context, _ *Machine, f []Forward) ([]Forward, error) {
	p.setForwards = append(p.setForwards, f)
	out := append([]Forward(nil), f...)
	for i := range out {
		if out[i].HostPort == 0 {
			out[i].HostPort = 50000 + i
		}
	}
	return out, nil
}

func managerWith(t *testing.T, p *fakeProvider) (*Manager, *Machine) {
	t.Helper()
	streams, _, _, _ := iostreams.Test()
	mgr := &Manager{
		Store:        Store{Root: t.TempDir()},
		IO:           streams,
		Provider:     func(context.Context, string) (Provider, error) { return p, nil },
		InsecureKeys: func(context.Context) ([]ssh.Signer, error) { return nil, nil },
	}
	m := &Machine{Name: "default", Provider: "libvirt", Phase: PhaseReady, Network: "user",
		SSH:      SSHInfo{User: "vagrant", KeyReplaced: true},
		Forwards: []Forward{{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40022}}}
	if err := mgr.Store.Save(m); err != nil {
		t.Fatal(err)
	}
	return mgr, m
}

func TestUpOnRunningMachineRefusesMissingForwards(t *testing.T) {
	p := &fakeProvider{state: StateRunning}
	mgr, _ := managerWith(t, p)
	_, err := mgr.Up(context.Background(), UpOptions{Name: "default", Provider: "libvirt",
		Ports: []Forward{{Name: "docker", GuestPort: 2376}}})
	if err == nil || !strings.Contains(err.Error(), "docker (guest port 2376)") || !strings.Contains(err.Error(), "halted") {
		t.Fatalf("got %v", err)
	}
	if p.started != 0 || len(p.setForwards) != 0 {
		t.Errorf("a running machine was started or rewired: %+v", p)
	}
}

func TestUpOnHaltedMachineAddsForwardsKeepingPorts(t *testing.T) {
	p := &fakeProvider{state: StateHalted}
	mgr, _ := managerWith(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Nothing answers SSH here: Up fails after starting, which is all this
	// test needs to see.
	_, _ = mgr.Up(ctx, UpOptions{Name: "default", Provider: "libvirt", BootTimeout: 300 * time.Millisecond,
		Ports: []Forward{{Name: "docker", GuestPort: 2376}}})
	if len(p.setForwards) != 1 || p.started != 1 {
		t.Fatalf("SetForwards calls %d, starts %d", len(p.setForwards), p.started)
	}
	got := p.setForwards[0]
	if len(got) != 2 || got[0].Name != "ssh" || got[0].HostPort != 40022 || got[1].Name != "docker" || got[1].HostPort != 0 {
		t.Errorf("forwards asked for: %+v", got)
	}
	m, err := mgr.Store.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := m.Forward("docker"); !ok || f.HostPort == 0 {
		t.Errorf("new forward not saved: %+v", m.Forwards)
	}
}

// addressingProvider answers Address with a lease after some misses.
type addressingProvider struct {
	fakeProvider
	misses int
	addr   string
	calls  int
}

func (p *addressingProvider) Address(context.Context, *Machine) (string, error) {
	p.calls++
	if p.calls <= p.misses {
		return "", errors.New("no DHCP lease yet")
	}
	return p.addr, nil
}

func TestResolveAddressWaitsForLeaseAndRecordsIt(t *testing.T) {
	p := &addressingProvider{misses: 2, addr: "192.0.2.7"}
	mgr, m := managerWith(t, &p.fakeProvider)
	m.Network, m.Address = NetworkModeLibvirt, "192.0.2.3"
	if err := mgr.resolveAddress(context.Background(), p, m, time.Minute); err != nil {
		t.Fatal(err)
	}
	if p.calls != 3 {
		t.Errorf("Address asked %d times, want 3", p.calls)
	}
	saved, err := mgr.Store.Load(m.Name)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Address != "192.0.2.7" {
		t.Errorf("saved address %q, want the new lease 192.0.2.7", saved.Address)
	}
	// Network mode records forwards without host ports: SSH goes to the
	// machine's own address.
	saved.Forwards = []Forward{{Name: "ssh", GuestPort: 22}}
	if addr, err := sshAddr(saved); err != nil || addr != "192.0.2.7:22" {
		t.Errorf("sshAddr = %q, %v", addr, err)
	}
}

func TestResolveAddressGivesUpWithHint(t *testing.T) {
	p := &addressingProvider{misses: 1 << 30}
	mgr, m := managerWith(t, &p.fakeProvider)
	err := mgr.resolveAddress(context.Background(), p, m, 600*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "got no address") || !strings.Contains(err.Error(), "no DHCP lease yet") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(dberr.Hint(err), "net-dhcp-leases") {
		t.Errorf("hint %q", dberr.Hint(err))
	}
}

func TestResolveAddressNeedsAddresser(t *testing.T) {
	p := &fakeProvider{}
	mgr, m := managerWith(t, p)
	if err := mgr.resolveAddress(context.Background(), p, m, time.Second); err == nil || !strings.Contains(err.Error(), "cannot tell the address") {
		t.Fatalf("got %v", err)
	}
}

// liveProvider can change a running machine's forwards.
type liveProvider struct {
	fakeProvider
	live [][]Forward
}

func (p *liveProvider) SetForwardsLive(_ context.Context, _ *Machine, f []Forward) ([]Forward, error) {
	p.live = append(p.live, f)
	out := append([]Forward(nil), f...)
	for i := range out {
		if out[i].HostPort == 0 {
			out[i].HostPort = 51000 + i
		}
	}
	return out, nil
}

func TestUpOnRunningMachineAddsForwardsLive(t *testing.T) {
	p := &liveProvider{fakeProvider: fakeProvider{state: StateRunning}}
	mgr, m := managerWith(t, &p.fakeProvider)
	// A forward of a service enabled earlier stays, with its port.
	m.Forwards = append(m.Forwards, Forward{Name: "kubernetes", GuestPort: 6443, HostIP: "127.0.0.1", HostPort: 40643})
	if err := mgr.Store.Save(m); err != nil {
		t.Fatal(err)
	}
	mgr.Provider = func(context.Context, string) (Provider, error) { return p, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = mgr.Up(ctx, UpOptions{Name: "default", Provider: "libvirt", BootTimeout: 300 * time.Millisecond,
		Ports: []Forward{{Name: "docker", GuestPort: 2376}}})
	if len(p.live) != 1 || p.started != 0 || len(p.setForwards) != 0 {
		t.Fatalf("live calls %d, starts %d, halted-style calls %d", len(p.live), p.started, len(p.setForwards))
	}
	got := p.live[0]
	if len(got) != 3 || got[0].HostPort != 40022 || got[1].Name != "kubernetes" || got[1].HostPort != 40643 ||
		got[2].Name != "docker" || got[2].HostPort != 0 {
		t.Errorf("forwards asked for: %+v", got)
	}
	saved, err := mgr.Store.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := saved.Forward("docker"); !ok || f.HostPort != 51002 {
		t.Errorf("live forward not saved: %+v", saved.Forwards)
	}
}

// hostOnlyProvider has a host-only adapter with a fixed MAC.
type hostOnlyProvider struct{ fakeProvider }

func (p *hostOnlyProvider) HostOnlyMAC(context.Context, *Machine) (string, bool, error) {
	return "08:00:27:aa:bb:cc", true, nil
}

// guestOutput answers every command with the same output, recording it.
type guestOutput struct {
	out  string
	cmds []string
}

func (g *guestOutput) Output(_ context.Context, cmd string) ([]byte, error) {
	g.cmds = append(g.cmds, cmd)
	return []byte(g.out), nil
}

func TestRecordHostOnlyAddress(t *testing.T) {
	p := &hostOnlyProvider{}
	mgr, m := managerWith(t, &p.fakeProvider)
	g := &guestOutput{out: "iface=eth1\naddr=192.168.56.10\n"}
	if err := mgr.recordHostOnlyAddress(context.Background(), p, g, m); err != nil {
		t.Fatal(err)
	}
	if len(g.cmds) != 1 || !strings.Contains(g.cmds[0], "'08:00:27:aa:bb:cc'") {
		t.Errorf("guest commands %q", g.cmds)
	}
	saved, err := mgr.Store.Load(m.Name)
	if err != nil || saved.Address != "192.168.56.10" {
		t.Fatalf("saved address %q, %v", saved.Address, err)
	}
	// SSH keeps going through the forward.
	if addr, _ := sshAddr(saved); addr != "127.0.0.1:40022" {
		t.Errorf("sshAddr = %q", addr)
	}

	// No address in the guest: a warning, not a failure; nothing changes.
	streams, _, _, stderr := iostreams.Test()
	mgr.IO = streams
	g.out = "iface=eth1\naddr=\n"
	if err := mgr.recordHostOnlyAddress(context.Background(), p, g, saved); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "interface eth1 has no IPv4 address") {
		t.Errorf("warning: %q", stderr.String())
	}
	if again, _ := mgr.Store.Load(m.Name); again.Address != "192.168.56.10" {
		t.Errorf("address after a failed lookup: %q", again.Address)
	}

	// A provider without host-only adapters: nothing is asked.
	g.cmds = nil
	if err := mgr.recordHostOnlyAddress(context.Background(), &p.fakeProvider, g, m); err != nil || len(g.cmds) != 0 {
		t.Errorf("without HostOnlyNIC: %v, commands %q", err, g.cmds)
	}
}
