package providertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/devbundle/devbundle/vm"
)

// fakeProvider keeps machines in memory and serves their forwards on real
// 127.0.0.1 listeners that greet like sshd, so the suite's own logic can
// be tested fast. It proves nothing about any real provider.
type fakeProvider struct {
	mu       sync.Mutex
	machines map[string]*fakeVM
	uploads  map[string]int // per disk key
	broken   string         // which promise to break
}

type fakeVM struct {
	state     vm.State
	forwards  []vm.Forward
	key       string
	listeners []net.Listener
}

func newFake(broken string) *fakeProvider {
	return &fakeProvider{machines: map[string]*fakeVM{}, uploads: map[string]int{}, broken: broken}
}

func (f *fakeProvider) Name() string { return "fake" }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (f *fakeProvider) fill(fw []vm.Forward) ([]vm.Forward, error) {
	out := make([]vm.Forward, len(fw))
	for i, x := range fw {
		x.HostIP = "127.0.0.1"
		if x.HostPort == 0 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			x.HostPort = p
		}
		out[i] = x
	}
	return out, nil
}

func (f *fakeProvider) Create(_ context.Context, s vm.Spec) (vm.Created, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := s.Disks[0].Key
	if f.uploads[key] == 0 || f.broken == "reupload" {
		f.uploads[key]++
	}
	fw, err := f.fill(s.Forwards)
	if err != nil {
		return vm.Created{}, err
	}
	f.machines[s.Name] = &fakeVM{state: vm.StateHalted, forwards: fw, key: key}
	return vm.Created{ID: "fake-" + s.Name, Forwards: fw, Accel: "tcg"}, nil
}

func (f *fakeProvider) get(m *vm.Machine) (*fakeVM, error) {
	v, ok := f.machines[m.Name]
	if !ok {
		return nil, fmt.Errorf("machine %q: %w", m.Name, vm.ErrNotFound)
	}
	return v, nil
}

func (f *fakeProvider) Start(_ context.Context, m *vm.Machine) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.get(m)
	if err != nil || v.state == vm.StateRunning {
		return err
	}
	if f.broken == "noguest" {
		v.state = vm.StateRunning // nothing listens: no guest
		return nil
	}
	for _, fw := range v.forwards {
		l, err := net.Listen("tcp", net.JoinHostPort(fw.HostIP, strconv.Itoa(fw.HostPort)))
		if err != nil {
			return err
		}
		v.listeners = append(v.listeners, l)
		greeting := "SSH-2.0-fake\r\n"
		if f.broken == "nobanner" {
			greeting = "HTTP/1.0 400 nope\r\n"
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte(greeting))
				c.Close()
			}
		}()
	}
	v.state = vm.StateRunning
	return nil
}

func (f *fakeProvider) Halt(_ context.Context, m *vm.Machine, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.get(m)
	if err != nil {
		return err
	}
	if f.broken == "haltnoop" {
		return nil
	}
	for _, l := range v.listeners {
		l.Close()
	}
	v.listeners = nil
	v.state = vm.StateHalted
	return nil
}

func (f *fakeProvider) Destroy(_ context.Context, m *vm.Machine) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.machines[m.Name]; ok {
		for _, l := range v.listeners {
			l.Close()
		}
		delete(f.machines, m.Name)
	}
	return nil
}

func (f *fakeProvider) State(_ context.Context, m *vm.Machine) (vm.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.machines[m.Name]
	if !ok {
		return vm.StateNotCreated, nil
	}
	return v.state, nil
}

func (f *fakeProvider) Close() error { return nil }

func (f *fakeProvider) SetForwards(_ context.Context, m *vm.Machine, fw []vm.Forward) ([]vm.Forward, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.get(m)
	if err != nil {
		return nil, err
	}
	if v.forwards, err = f.fill(fw); err != nil {
		return nil, err
	}
	return v.forwards, nil
}

func (f *fakeProvider) BaseImage(_ context.Context, m *vm.Machine) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.get(m)
	if err != nil {
		return "", "", err
	}
	return "base-" + v.key, strconv.Itoa(f.uploads[v.key]), nil
}

func fakeSpec(t *testing.T) vm.Spec {
	return vm.Spec{
		Name: "suite", Dir: t.TempDir(), CPUs: 1, MemoryMiB: 512,
		Disks:    []vm.Disk{{Path: "/box.img", Format: "qcow2", Key: "box"}},
		Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}, {Name: "docker", GuestPort: 2376}},
	}
}

func TestRunPassesAGoodProvider(t *testing.T) {
	f := newFake("")
	Run(t, func(*testing.T) vm.Provider { return f }, fakeSpec, Options{SSH: true})
	if len(f.machines) != 0 {
		t.Fatalf("machines left: %v", f.machines)
	}
}

// The suite must fail providers that break their promises. Each broken
// fake runs in a child process so its failure does not fail this test.
func TestRunFailsBrokenProviders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for broken, want := range map[string]string{
		"haltnoop": `State("suite") = "running", want "halted"`,
		"reupload": "uploaded it again",
		"nobanner": "is not SSH-2.0",
	} {
		t.Run(broken, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.v")
			cmd.Env = append(os.Environ(), "PROVIDERTEST_BROKEN="+broken)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a provider broken as %q:\n%s", broken, out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed, but not with %q:\n%s", want, out)
			}
		})
	}
}

// A provider whose VMs run no guest fails the full suite but passes with
// NoGuest, which names every check it skipped.
func TestRunNoGuestSkipsVisibly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	run := func(noGuest string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenChild$", "-test.v")
		cmd.Env = append(os.Environ(), "PROVIDERTEST_BROKEN=noguest", "PROVIDERTEST_NOGUEST="+noGuest)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err == nil || !strings.Contains(out, "never answered") {
		t.Fatalf("the full suite passed a provider without guests (%v):\n%s", err, out)
	}
	out, err = run("1")
	if err != nil {
		t.Fatalf("with NoGuest the suite failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"NoGuest: the checks that forwards accept TCP on 127.0.0.1, that the \"ssh\" forward sends an SSH-2.0 banner skipped below",
		`SKIPPED (NoGuest): forward "ssh"`,
		`SKIPPED (NoGuest): forward "docker"`,
		"sending an SSH-2.0 banner: no guest runs behind it",
		"forced halt:", // the lifecycle itself still runs
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "SKIPPED (NoGuest)"); n != 4 {
		t.Errorf("%d skip lines, want 4 (two forwards, two boots):\n%s", n, out)
	}
}

func TestBrokenChild(t *testing.T) {
	broken := os.Getenv("PROVIDERTEST_BROKEN")
	if broken == "" {
		t.Skip("child of TestRunFailsBrokenProviders")
	}
	f := newFake(broken)
	opts := Options{SSH: true, NoGuest: os.Getenv("PROVIDERTEST_NOGUEST") != ""}
	if broken == "nobanner" || broken == "noguest" {
		opts.BootTimeout = 3e9
	}
	Run(t, func(*testing.T) vm.Provider { return f }, fakeSpec, opts)
}
