// Package providertest is the conformance suite every vm.Provider must
// pass, on a real hypervisor with a real box.
//
// Run drives two machines through the whole life a provider is asked for:
// create (twice from one box: the second must share the first's base
// image where the provider keeps one), halted after create, start,
// running, forwards accepting TCP on 127.0.0.1 (and an SSH banner on the
// "ssh" forward when the box runs sshd), graceful halt, changed forwards
// (when the provider implements vm.ForwardReconciler), start again, forced
// halt, destroy, destroy again. It boots twice: each boot under software
// emulation costs 15 s or more.
//
// With Options.NoGuest the same lifecycle runs against a provider whose
// VMs never run a guest (a fake hypervisor tool): every check that needs
// one (forwards answering, the SSH banner, AfterBoot) is skipped, and
// each skip is logged with what was skipped and why.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// Options tune the suite to the provider and box under test.
type Options struct {
	// SSH says the box runs sshd on the guest port of the forward named
	// "ssh": the suite then waits for its "SSH-2.0" banner after each
	// start that checks forwards. Without it the suite only checks that
	// the forwards accept TCP connections.
	SSH bool
	// BootTimeout bounds each wait for the guest (default 4 minutes).
	BootTimeout time.Duration
	// HaltTimeout bounds the graceful halt (default 2 minutes).
	HaltTimeout time.Duration
	// AfterBoot, when set, is called while the first machine runs and
	// answers (the provider's own checks: console log, definition).
	AfterBoot func(t *testing.T, p vm.Provider, m *vm.Machine)
	// NoGuest says the provider's VMs never boot a guest (it drives a
	// fake of its hypervisor's tool): the lifecycle and every state are
	// still checked, but the checks that need a guest (forwards accepting
	// TCP, the SSH banner, AfterBoot) are skipped and logged as skipped.
	NoGuest bool
}

// SharedBase is implemented by providers that keep one copy of a box's
// disk for every machine made from it.
type SharedBase interface {
	// BaseImage names the image the machine's boot disk is backed by and
	// gives a stamp that changes whenever that image is written.
	BaseImage(ctx context.Context, m *vm.Machine) (id, stamp string, err error)
}

// Run runs the suite. newProvider gives a connected provider (the suite
// closes it); spec gives the machine to create: its Name is used for the
// first machine and Name+"-b" for the second, which gets a folder of its
// own. Both machines are destroyed when the test ends, failed or not.
func Run(t *testing.T, newProvider func(t *testing.T) vm.Provider, spec func(t *testing.T) vm.Spec, opts Options) {
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = 4 * time.Minute
	}
	if opts.HaltTimeout <= 0 {
		opts.HaltTimeout = 2 * time.Minute
	}
	if opts.NoGuest {
		t.Logf("NoGuest: the %s skipped below need a guest that answers; this provider's VMs boot none", guestChecks(opts))
	}
	p := newProvider(t)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	specA := spec(t)
	specB := spec(t)
	specB.Name = specA.Name + "-b"
	specB.Dir = t.TempDir()
	specB.ConsoleLog = ""

	a := &vm.Machine{Name: specA.Name, Provider: p.Name()}
	b := &vm.Machine{Name: specB.Name, Provider: p.Name()}
	for _, m := range []*vm.Machine{a, b} {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := p.Destroy(ctx, m); err != nil {
				t.Errorf("cleanup: destroy machine %q: %v", m.Name, err)
			}
		})
	}

	ctx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return c
	}
	step := func(name string) func() {
		start := time.Now()
		t.Logf("%s ...", name)
		return func() { t.Logf("%s: %s", name, time.Since(start).Round(10*time.Millisecond)) }
	}
	wantState := func(m *vm.Machine, want vm.State) {
		t.Helper()
		got, err := p.State(ctx(time.Minute), m)
		if err != nil {
			t.Fatalf("State(%q): %v", m.Name, err)
		}
		if got != want {
			t.Fatalf("State(%q) = %q, want %q", m.Name, got, want)
		}
	}

	wantState(a, vm.StateNotCreated)

	done := step("create " + a.Name)
	created, err := p.Create(ctx(30*time.Minute), specA)
	if err != nil {
		t.Fatalf("Create(%q): %v", a.Name, err)
	}
	done()
	record(a, created)
	t.Logf("created %q: accel %s, forwards %+v, console %s, warnings %q", a.Name, created.Accel, created.Forwards, created.ConsoleLog, created.Warnings)
	checkCreated(t, specA, created)
	wantState(a, vm.StateHalted)

	// A second machine from the same box: created, sharing the base, and
	// destroyed without ever booting.
	var idA, stampA string
	sb, shares := p.(SharedBase)
	if shares {
		if idA, stampA, err = sb.BaseImage(ctx(time.Minute), a); err != nil {
			t.Fatalf("BaseImage(%q): %v", a.Name, err)
		}
	}
	done = step("create " + b.Name)
	createdB, err := p.Create(ctx(30*time.Minute), specB)
	if err != nil {
		t.Fatalf("Create(%q): %v", b.Name, err)
	}
	done()
	record(b, createdB)
	checkCreated(t, specB, createdB)
	for _, fa := range created.Forwards {
		for _, fb := range createdB.Forwards {
			if fa.HostIP == fb.HostIP && fa.HostPort == fb.HostPort && fa.HostPort != 0 {
				t.Errorf("machines %q and %q both forward host port %d", a.Name, b.Name, fa.HostPort)
			}
		}
	}
	if shares {
		idB, stampB, err := sb.BaseImage(ctx(time.Minute), b)
		if err != nil {
			t.Fatalf("BaseImage(%q): %v", b.Name, err)
		}
		if idB != idA {
			t.Errorf("machine %q is backed by %q, machine %q by %q: the box image was not shared", b.Name, idB, a.Name, idA)
		}
		if stampB != stampA {
			t.Errorf("base image %q changed (stamp %q, then %q): the second create uploaded it again", idA, stampA, stampB)
		}
	} else {
		t.Logf("provider %q keeps no shared base image: sharing not checked", p.Name())
	}
	wantState(b, vm.StateHalted)
	if err := p.Destroy(ctx(2*time.Minute), b); err != nil {
		t.Fatalf("Destroy(%q) of a never-started machine: %v", b.Name, err)
	}
	wantState(b, vm.StateNotCreated)
	if shares {
		if id, _, err := sb.BaseImage(ctx(time.Minute), a); err != nil || id != idA {
			t.Fatalf("after destroying %q, %q's base is %q (%v), want %q kept", b.Name, a.Name, id, err, idA)
		}
	}

	// First boot: forwards, SSH, graceful halt.
	done = step("start " + a.Name + " and wait for its forwards")
	if err := p.Start(ctx(5*time.Minute), a); err != nil {
		t.Fatalf("Start(%q): %v", a.Name, err)
	}
	wantState(a, vm.StateRunning)
	if err := p.Start(ctx(time.Minute), a); err != nil {
		t.Fatalf("Start(%q) of a running machine: %v", a.Name, err)
	}
	waitGuest(ctx(opts.BootTimeout), t, a.Forwards, opts)
	done()
	switch {
	case opts.AfterBoot != nil && opts.NoGuest:
		t.Logf("SKIPPED (NoGuest): AfterBoot for %q: it expects a running guest", a.Name)
	case opts.AfterBoot != nil:
		opts.AfterBoot(t, p, a)
	}
	done = step("halt " + a.Name)
	if err := p.Halt(ctx(opts.HaltTimeout), a, false); err != nil {
		t.Fatalf("Halt(%q): %v", a.Name, err)
	}
	done()
	wantState(a, vm.StateHalted)
	if err := p.Halt(ctx(time.Minute), a, false); err != nil {
		t.Fatalf("Halt(%q) of a halted machine: %v", a.Name, err)
	}

	// Changed forwards take effect at the next start.
	checkForwards := false
	if fr, ok := p.(vm.ForwardReconciler); ok {
		want := make([]vm.Forward, len(a.Forwards))
		copy(want, a.Forwards)
		for i := range want {
			want[i].HostPort = 0
		}
		got, err := fr.SetForwards(ctx(time.Minute), a, want)
		if err != nil {
			t.Fatalf("SetForwards(%q): %v", a.Name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("SetForwards(%q) returned %d forwards for %d", a.Name, len(got), len(want))
		}
		for i, f := range got {
			if f.HostPort == 0 || f.GuestPort != want[i].GuestPort || f.Name != want[i].Name {
				t.Fatalf("SetForwards(%q) = %+v for %+v", a.Name, got, want)
			}
		}
		a.Forwards = got
		checkForwards = true
	}

	// Second boot: forced halt.
	done = step("start " + a.Name + " again")
	if err := p.Start(ctx(5*time.Minute), a); err != nil {
		t.Fatalf("second Start(%q): %v", a.Name, err)
	}
	wantState(a, vm.StateRunning)
	if checkForwards {
		waitGuest(ctx(opts.BootTimeout), t, a.Forwards, opts)
	}
	done()
	forceStart := time.Now()
	if err := p.Halt(ctx(time.Minute), a, true); err != nil {
		t.Fatalf("Halt(%q, force): %v", a.Name, err)
	}
	t.Logf("forced halt: %s", time.Since(forceStart).Round(10*time.Millisecond))
	wantState(a, vm.StateHalted)

	if err := p.Destroy(ctx(2*time.Minute), a); err != nil {
		t.Fatalf("Destroy(%q): %v", a.Name, err)
	}
	wantState(a, vm.StateNotCreated)
	if err := p.Destroy(ctx(2*time.Minute), a); err != nil {
		t.Fatalf("Destroy(%q) of a destroyed machine: %v", a.Name, err)
	}
	if err := p.Start(ctx(time.Minute), a); err == nil {
		t.Fatalf("Start(%q) of a destroyed machine succeeded", a.Name)
	} else if !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("Start(%q) of a destroyed machine: %v, want an error wrapping vm.ErrNotFound", a.Name, err)
	}
}

// record copies what Create reported into the machine's state, as the
// lifecycle does.
func record(m *vm.Machine, c vm.Created) {
	m.ID = c.ID
	m.Forwards = c.Forwards
	m.ConsoleLog = c.ConsoleLog
	m.Accel = c.Accel
	m.Created = time.Now()
}

func checkCreated(t *testing.T, spec vm.Spec, c vm.Created) {
	t.Helper()
	if c.ID == "" {
		t.Errorf("Create(%q) reported no ID", spec.Name)
	}
	if c.Accel == "" {
		t.Errorf("Create(%q) reported no accelerator", spec.Name)
	}
	if len(c.Forwards) != len(spec.Forwards) {
		t.Fatalf("Create(%q) reported %d forwards for %d asked", spec.Name, len(c.Forwards), len(spec.Forwards))
	}
	seen := map[int]bool{}
	for i, f := range c.Forwards {
		want := spec.Forwards[i]
		if f.Name != want.Name || f.GuestPort != want.GuestPort {
			t.Errorf("forward %d is %+v, asked %+v", i, f, want)
		}
		if f.HostIP != "127.0.0.1" {
			t.Errorf("forward %q binds %q, want 127.0.0.1", f.Name, f.HostIP)
		}
		if f.HostPort < 1 || f.HostPort > 65535 || seen[f.HostPort] {
			t.Errorf("forward %q has host port %d (zero, out of range or taken twice)", f.Name, f.HostPort)
		}
		seen[f.HostPort] = true
	}
}

// guestChecks names the checks NoGuest skips.
func guestChecks(opts Options) string {
	s := "checks that forwards accept TCP on 127.0.0.1"
	if opts.SSH {
		s += ", that the \"ssh\" forward sends an SSH-2.0 banner"
	}
	if opts.AfterBoot != nil {
		s += " and AfterBoot"
	}
	return s
}

// waitGuest waits for the forwards (waitForwards) or, with NoGuest, logs
// that it did not.
func waitGuest(ctx context.Context, t *testing.T, forwards []vm.Forward, opts Options) {
	t.Helper()
	if !opts.NoGuest {
		waitForwards(ctx, t, forwards, opts.SSH)
		return
	}
	for _, f := range forwards {
		what := "accepting TCP"
		if f.Name == "ssh" && opts.SSH {
			what = "sending an SSH-2.0 banner"
		}
		t.Logf("SKIPPED (NoGuest): forward %q (%s:%d -> guest port %d) %s: no guest runs behind it", f.Name, f.HostIP, f.HostPort, f.GuestPort, what)
	}
}

// waitForwards waits until every forward accepts a TCP connection on the
// host and, with ssh, the "ssh" forward sends an SSH-2.0 banner.
func waitForwards(ctx context.Context, t *testing.T, forwards []vm.Forward, ssh bool) {
	t.Helper()
	for _, f := range forwards {
		addr := net.JoinHostPort(f.HostIP, strconv.Itoa(f.HostPort))
		var last error
		for {
			var err error
			if f.Name == "ssh" && ssh {
				err = readBanner(ctx, addr)
			} else {
				err = dial(ctx, addr)
			}
			if err == nil {
				break
			}
			last = err
			select {
			case <-ctx.Done():
				t.Fatalf("forward %q (%s -> guest port %d) never answered: %v", f.Name, addr, f.GuestPort, last)
			case <-time.After(time.Second):
			}
		}
	}
}

func dial(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// readBanner connects and reads the server's first line.
func readBanner(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, 256)
	one := make([]byte, 1)
	for len(buf) < cap(buf) {
		n, err := c.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			buf = append(buf, one[0])
		}
		if err != nil {
			return fmt.Errorf("read banner: %w (got %q)", err, buf)
		}
	}
	if len(buf) < 8 || string(buf[:8]) != "SSH-2.0-" {
		return fmt.Errorf("banner %q is not SSH-2.0", buf)
	}
	return nil
}
