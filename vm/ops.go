package vm

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// Status is what `devbundle status` shows.
type Status struct {
	Name     string    `json:"name"`
	State    State     `json:"state"`
	Provider string    `json:"provider,omitempty"`
	Box      *BoxRef   `json:"box,omitempty"`
	Address  string    `json:"address,omitempty"`
	Forwards []Forward `json:"forwards,omitempty"`
	// Host is user@host:port of the remote libvirt host whose loopback
	// the forwards bind; empty for this host.
	Host string `json:"libvirt_host,omitempty"`
	// Problem explains an unknown state (the provider could not be asked).
	Problem string `json:"problem,omitempty"`
}

// Status reports the machine's state. It succeeds whatever the state; a
// provider that cannot be reached gives StateUnknown with the reason.
func (mgr *Manager) Status(ctx context.Context, name string) (*Status, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	m, err := mgr.Store.Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &Status{Name: name, State: StateNotCreated}, nil
	}
	if err != nil {
		return nil, err
	}
	st := &Status{Name: name, Provider: m.Provider, Box: &m.Box, Address: m.Address, Forwards: m.Forwards}
	if m.Via != nil {
		st.Host = m.Via.User + "@" + m.Via.Addr
	}
	state, err := mgr.state(ctx, m)
	if err != nil {
		st.State, st.Problem = StateUnknown, err.Error()
		return st, nil
	}
	st.State = state
	if state == StateRunning && m.Phase != PhaseReady {
		st.Problem = "\"devbundle up\" did not finish; run it again"
	}
	return st, nil
}

// HaltOptions say how to halt.
type HaltOptions struct {
	Force   bool          // power off at once
	Timeout time.Duration // how long to wait for the guest to shut down (default 2 minutes)
}

// Halt shuts the machine down. A machine already halted is fine.
func (mgr *Manager) Halt(ctx context.Context, name string, opts HaltOptions) error {
	m, err := mgr.load(name)
	if err != nil {
		return err
	}
	unlock, err := mgr.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := mgr.Provider(ctx, m.Provider)
	if err != nil {
		return err
	}
	defer p.Close()
	st, err := p.State(ctx, m)
	if err != nil {
		return err
	}
	if st != StateRunning && st != StatePaused {
		mgr.IO.Infof("machine %q is already %s", name, st)
		return nil
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	step := mgr.IO.StartStep("Halting VM")
	if err := p.Halt(hctx, m, opts.Force); err != nil {
		step.Fail()
		return err
	}
	step.Done("")
	return nil
}

// Destroy removes the machine's VM, its volumes and its folder. A machine
// half-created by an interrupted `up` is removed as well.
func (mgr *Manager) Destroy(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if !mgr.Store.Exists(name) {
		mgr.IO.Infof("machine %q does not exist; nothing to destroy", name)
		return nil
	}
	unlock, err := mgr.lock(ctx, name)
	if err != nil {
		return err
	}
	m, err := mgr.Store.Load(name)
	if err != nil {
		unlock()
		return err
	}
	p, err := mgr.Provider(ctx, m.Provider)
	if err != nil {
		unlock()
		return err
	}
	defer p.Close()
	step := mgr.IO.StartStep("Destroying VM")
	if err := p.Destroy(ctx, m); err != nil {
		step.Fail()
		unlock()
		return err
	}
	step.Done("")
	// The lock file lives in the folder being removed: release it first
	// (Windows cannot remove an open file).
	unlock()
	return mgr.Store.Remove(name)
}
