package vm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

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
