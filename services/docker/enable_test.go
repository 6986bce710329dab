package docker

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

type enableEnv struct {
	svc   *Service
	guest *fakeGuest
	m     *vm.Machine
	dir   string
	proxy string
	logs  []string
}

func newEnableEnv(t *testing.T) *enableEnv {
	g, port := newFakeGuest(t)
	return &enableEnv{
		svc:   New(Options{VerifyTimeout: 3 * time.Second}),
		guest: g,
		m: &vm.Machine{Name: "m1", Network: "user", Forwards: []vm.Forward{
			{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 2222},
			{Name: "docker", GuestPort: 2376, HostIP: "127.0.0.1", HostPort: port},
		}},
		dir: filepath.Join(t.TempDir(), "docker"),
	}
}

func (e *enableEnv) enable(t *testing.T) (State, error) {
	t.Helper()
	raw, err := e.svc.Enable(context.Background(), services.Context{
		Guest: e.guest, Machine: e.m, Dir: e.dir, Proxy: e.proxy,
		Log: func(format string, args ...any) { e.logs = append(e.logs, format) },
	})
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("state %s: %v", raw, err)
	}
	e.m.Services = map[string]json.RawMessage{Name: raw}
	return st, nil
}

func (e *enableEnv) mustEnable(t *testing.T) State {
	t.Helper()
	st, err := e.enable(t)
	if err != nil {
		t.Fatalf("Enable: %v", err)
	}
	return st
}

func TestEnableFirstTimeThenCheap(t *testing.T) {
	e := newEnableEnv(t)
	st := e.mustEnable(t)

	g := e.guest
	if st.Version != "20.10.24+dfsg1" || st.APIVersion != "1.41" || st.MinAPIVersion != "1.12" {
		t.Errorf("versions in state: %+v", st)
	}
	if want := []string{"127.0.0.1", "devbox", "localhost"}; !slices.Equal(st.SANs, want) {
		t.Errorf("SANs %v, want %v", st.SANs, want)
	}
	if st.CAFingerprint == "" || st.ServerFingerprint == "" || st.ClientFingerprint == "" || st.GuestPort != 2376 {
		t.Errorf("state %+v", st)
	}
	if want := []string{GuestCA, GuestCert, GuestKey, DropInPath}; !slices.Equal(g.uploads, want) {
		t.Errorf("uploads %v, want %v", g.uploads, want)
	}
	if g.files[GuestKey].mode != 0o600 || g.files[GuestCA].mode != 0o644 || g.files[DropInPath].mode != 0o644 {
		t.Errorf("guest modes: key %o ca %o drop-in %o", g.files[GuestKey].mode, g.files[GuestCA].mode, g.files[DropInPath].mode)
	}
	if g.restarts != 1 || g.starts != 0 {
		t.Errorf("restarts %d starts %d, want one restart", g.restarts, g.starts)
	}
	if !slices.Contains(g.groups, "docker") {
		t.Errorf("login user not added to the docker group")
	}
	if _, pending := g.files[restartMarker]; pending {
		t.Errorf("restart marker left after a good restart")
	}
	drop := string(g.files[DropInPath].data)
	if !strings.Contains(drop, "-H fd://") || !strings.Contains(drop, "-H tcp://0.0.0.0:2376") || !strings.Contains(drop, "--tlsverify") {
		t.Errorf("drop-in:\n%s", drop)
	}
	if strings.Contains(drop, "Environment=") {
		t.Errorf("proxy lines without a proxy:\n%s", drop)
	}

	// A second `up`: one probe, no upload, no restart, the same certificates.
	g.reset()
	st2 := e.mustEnable(t)
	if len(g.cmds) != 1 || !strings.Contains(g.cmds[0], "devbundle-probe") {
		t.Errorf("second enable ran %d commands: %q", len(g.cmds), g.cmds)
	}
	if len(g.uploads) != 0 || g.restarts != 0 {
		t.Errorf("second enable: uploads %v restarts %d", g.uploads, g.restarts)
	}
	if st2.ServerFingerprint != st.ServerFingerprint || st2.CAFingerprint != st.CAFingerprint {
		t.Errorf("state changed: %+v -> %+v", st, st2)
	}
}

func TestEnableRemakesTheServerCertWhenTheHostnameChanges(t *testing.T) {
	e := newEnableEnv(t)
	st := e.mustEnable(t)
	g := e.guest
	g.reset()
	g.hostname = "workbox"
	st2 := e.mustEnable(t)
	if want := []string{GuestCert, GuestKey}; !slices.Equal(g.uploads, want) {
		t.Errorf("uploads %v, want only the server pair", g.uploads)
	}
	if g.restarts != 1 {
		t.Errorf("restarts %d, want 1", g.restarts)
	}
	if st2.CAFingerprint != st.CAFingerprint || st2.ClientFingerprint != st.ClientFingerprint {
		t.Errorf("the CA or client certificate changed")
	}
	if st2.ServerFingerprint == st.ServerFingerprint || !slices.Contains(st2.SANs, "workbox") || slices.Contains(st2.SANs, "devbox") {
		t.Errorf("server SANs %v after the rename", st2.SANs)
	}
}

// TestEnableNetworkMode reaches dockerd at the VM's own address, port
// 2376, and remakes the server certificate when the address changes. The
// "VM addresses" are 127.0.0.2 and 127.0.0.3, where the fake dockerd
// listens (Linux routes all of 127.0.0.0/8 to the loopback).
func TestEnableNetworkMode(t *testing.T) {
	g, _, err := newFakeGuestAt(t, "127.0.0.2:2376", "127.0.0.3:2376")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:2376 and 127.0.0.3:2376 here: %v", err)
	}
	e := newEnableEnv(t)
	e.guest = g
	e.m.Network, e.m.Address, e.m.Forwards = "network", "127.0.0.2", nil
	st := e.mustEnable(t)
	if st.Endpoint != "127.0.0.2:2376" || !slices.Contains(st.SANs, "127.0.0.2") {
		t.Errorf("endpoint %q SANs %v", st.Endpoint, st.SANs)
	}
	info, err := e.svc.Env(e.m, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Vars[0].Value != "tcp://127.0.0.2:2376" || info.Probe != "127.0.0.2:2376" {
		t.Errorf("env %+v", info)
	}

	// A new address (a new DHCP lease): the certificate follows, the old
	// address leaves it, and env points at the new one.
	g.reset()
	e.m.Address = "127.0.0.3"
	if _, err := e.svc.Env(e.m, e.dir); err == nil || !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Errorf("env before the certificate was remade: %v, want exit 126", err)
	}
	st2 := e.mustEnable(t)
	if st2.Endpoint != "127.0.0.3:2376" || !slices.Contains(st2.SANs, "127.0.0.3") || slices.Contains(st2.SANs, "127.0.0.2") {
		t.Errorf("after the address changed: endpoint %q SANs %v", st2.Endpoint, st2.SANs)
	}
	if g.restarts != 1 || !slices.Equal(g.uploads, []string{GuestCert, GuestKey}) {
		t.Errorf("restarts %d uploads %v", g.restarts, g.uploads)
	}
	if st2.CAFingerprint != st.CAFingerprint {
		t.Errorf("the CA changed with the address")
	}
	if info, err := e.svc.Env(e.m, e.dir); err != nil || info.Vars[0].Value != "tcp://127.0.0.3:2376" {
		t.Errorf("env after: %+v %v", info, err)
	}

	e.m.Address = ""
	if _, err := e.enable(t); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("network mode without an address: %v", err)
	}
}

func TestEnableRestartsAfterAnInterruptedUp(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	g := e.guest
	// An `up` that uploaded new files and was killed before the restart:
	// the marker is there, the files match.
	g.files[restartMarker] = fakeFile{}
	g.reset()
	e.mustEnable(t)
	if g.restarts != 1 || len(g.uploads) != 0 {
		t.Errorf("restarts %d uploads %v, want one restart and no upload", g.restarts, g.uploads)
	}
}

func TestEnableRestartsDockerdServingOtherCertificates(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	g := e.guest
	// dockerd still runs with certificates of another CA (its files were
	// replaced behind devbundle's back and put back without a restart).
	other := t.TempDir()
	ensure(t, other, time.Now(), "127.0.0.1")
	g.mu.Lock()
	saved := g.files
	g.files = map[string]fakeFile{
		GuestCA:   {data: mustRead(t, filepath.Join(other, CAFile))},
		GuestCert: {data: mustRead(t, filepath.Join(other, ServerCertFile))},
		GuestKey:  {data: mustRead(t, filepath.Join(other, ServerKeyFile))},
	}
	g.startDockerdLocked()
	g.files = saved
	g.mu.Unlock()
	g.reset()
	e.mustEnable(t)
	if g.restarts != 1 {
		t.Errorf("restarts %d, want 1", g.restarts)
	}
}

func TestEnableStartsAStoppedDocker(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	g := e.guest
	g.active, g.served = "inactive", nil
	g.unitFileState = "disabled"
	g.reset()
	e.mustEnable(t)
	if g.starts != 1 || g.restarts != 0 {
		t.Errorf("starts %d restarts %d, want one start", g.starts, g.restarts)
	}
	if g.count("systemctl enable docker.service") != 1 {
		t.Errorf("a disabled docker.service was not enabled: %q", g.cmds)
	}
}

func TestEnableProxy(t *testing.T) {
	e := newEnableEnv(t)
	e.proxy = "http://user:secret@proxy.example:3128"
	e.mustEnable(t)
	f := e.guest.files[DropInPath]
	if !strings.Contains(string(f.data), `Environment="HTTP_PROXY=http://user:secret@proxy.example:3128" "HTTPS_PROXY=http://user:secret@proxy.example:3128" "NO_PROXY=localhost,127.0.0.1"`) {
		t.Errorf("drop-in:\n%s", f.data)
	}
	if f.mode != 0o600 {
		t.Errorf("drop-in with proxy credentials has mode %o", f.mode)
	}
	// Dropping the proxy changes the drop-in and restarts dockerd.
	e.guest.reset()
	e.proxy = ""
	e.mustEnable(t)
	if !slices.Equal(e.guest.uploads, []string{DropInPath}) || e.guest.restarts != 1 {
		t.Errorf("uploads %v restarts %d", e.guest.uploads, e.guest.restarts)
	}
}

func TestEnableInstallsDocker(t *testing.T) {
	e := newEnableEnv(t)
	g := e.guest
	g.dockerd, g.load, g.active, g.unitFileState = "", "not-found", "inactive", ""
	g.apparmor = true
	e.proxy = "http://proxy.example:3128"
	e.mustEnable(t)
	var install string
	for _, c := range g.cmds {
		if strings.Contains(c, "apt-get") && !strings.Contains(c, "devbundle-probe") {
			install = c
		}
	}
	if install == "" {
		t.Fatalf("no install command in %q", g.cmds)
	}
	for _, want := range []string{"'http_proxy=http://proxy.example:3128'", "'https_proxy=http://proxy.example:3128'", "docker.io", "devbundle 1"} {
		if !strings.Contains(install, want) {
			t.Errorf("install command lacks %q:\n%s", want, install)
		}
	}
	if g.count("devbundle-probe") != 2 {
		t.Errorf("the machine was not probed again after the install: %q", g.cmds)
	}
}

func TestEnableInstallFails(t *testing.T) {
	e := newEnableEnv(t)
	g := e.guest
	g.dockerd, g.load = "", "not-found"
	g.installExit = 11
	_, err := e.enable(t)
	if err == nil || !strings.Contains(err.Error(), "Unable to locate package docker.io") || dberr.Hint(err) == "" {
		t.Errorf("failed install: %v (hint %q)", err, dberr.Hint(err))
	}
	if len(g.uploads) != 0 {
		t.Errorf("uploads after a failed install: %v", g.uploads)
	}
}

func TestEnableRefusesToInstall(t *testing.T) {
	cases := []struct {
		name  string
		setup func(g *fakeGuest)
		want  string
	}{
		{"rpm-ostree", func(g *fakeGuest) { g.ostree, g.pm = true, "dnf" }, "rpm-ostree install docker"},
		{"no package manager", func(g *fakeGuest) { g.pm = "" }, "no package manager"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnableEnv(t)
			g := e.guest
			g.dockerd, g.load = "", "not-found"
			tc.setup(g)
			_, err := e.enable(t)
			if err == nil || !strings.Contains(err.Error()+" "+dberr.Hint(err), tc.want) {
				t.Errorf("got %v (hint %q), want %q", err, dberr.Hint(err), tc.want)
			}
			if g.count("dnf") != 1 || g.count("apt-get") != 1 {
				// the probe names both; nothing else may
				t.Errorf("a package manager was run: %q", g.cmds)
			}
		})
	}
}

func TestEnableRefusesConflictingDaemonJSON(t *testing.T) {
	e := newEnableEnv(t)
	e.guest.daemonJSON = `{"hosts": ["tcp://0.0.0.0:2375"]}`
	_, err := e.enable(t)
	if err == nil || !strings.Contains(err.Error(), `"hosts"`) {
		t.Errorf("got %v", err)
	}
	if len(e.guest.uploads) != 0 {
		t.Errorf("uploads despite the conflict: %v", e.guest.uploads)
	}
}

func TestEnableReportsAFailedRestart(t *testing.T) {
	e := newEnableEnv(t)
	e.guest.restartExit = 2
	_, err := e.enable(t)
	if err == nil || !strings.Contains(err.Error(), "failed to load listeners") || !strings.Contains(dberr.Hint(err), "journalctl") {
		t.Errorf("got %v (hint %q)", err, dberr.Hint(err))
	}
	if _, pending := e.guest.files[restartMarker]; !pending {
		t.Errorf("restart marker removed although dockerd did not restart")
	}
}

func TestEnableTimesOutWhenDockerdNeverAnswers(t *testing.T) {
	e := newEnableEnv(t)
	e.svc = New(Options{VerifyTimeout: 500 * time.Millisecond})
	// The forward points at a port where nothing answers TLS.
	e.m.Forwards[1].HostPort = closedPort(t)
	_, err := e.enable(t)
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "/version") {
		t.Errorf("got %v", err)
	}
}

func TestEnableWithoutTheDockerForward(t *testing.T) {
	e := newEnableEnv(t)
	e.m.Forwards = e.m.Forwards[:1]
	_, err := e.enable(t)
	if err == nil || !strings.Contains(err.Error(), "no forwarded port for docker") || !strings.Contains(dberr.Hint(err), "devbundle halt") {
		t.Errorf("got %v (hint %q)", err, dberr.Hint(err))
	}
	if len(e.guest.cmds) != 0 {
		t.Errorf("commands ran: %q", e.guest.cmds)
	}
}

func TestStatusStartStop(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	g := e.guest
	sc := services.Context{Guest: g, Machine: e.m, Dir: e.dir}
	ctx := context.Background()
	if st, err := e.svc.Status(ctx, sc); err != nil || st != services.StatusRunning {
		t.Errorf("status %q %v, want running", st, err)
	}
	if err := e.svc.Stop(ctx, sc); err != nil {
		t.Fatal(err)
	}
	var stop string
	for _, c := range g.cmds {
		if strings.Contains(c, "systemctl stop") {
			stop = c
		}
	}
	if !strings.Contains(stop, "docker.socket docker.service") || !strings.HasPrefix(stop, "sudo -n ") {
		t.Errorf("stop command %q does not stop the socket too", stop)
	}
	if st, _ := e.svc.Status(ctx, sc); st != services.StatusStopped {
		t.Errorf("after stop: %q", st)
	}
	if err := e.svc.Start(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.svc.Status(ctx, sc); st != services.StatusRunning {
		t.Errorf("after start: %q", st)
	}
	g.load = "not-found"
	if st, _ := e.svc.Status(ctx, sc); st != services.StatusUnavailable {
		t.Errorf("no unit: %q", st)
	}
	err := e.svc.Start(ctx, sc)
	if !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Errorf("start without a unit: %v, want exit 126", err)
	}
}

func TestKeyLine(t *testing.T) {
	apt := `Reading package lists...
W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'
E: Failed to fetch http://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1%2bb3_amd64.deb  Temporary failure resolving 'deb.debian.org'
E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?
`
	if got := keyLine(apt); !strings.HasPrefix(got, "E: Failed to fetch") || strings.Contains(got, "\n") {
		t.Errorf("apt: %q", got)
	}
	if got := keyLine("Last metadata expiration check: 0:01:02 ago\nNo match for argument: moby-engine\nError: Unable to find a match: moby-engine\n"); got != "No match for argument: moby-engine" {
		t.Errorf("dnf: %q", got)
	}
	if got := keyLine("W: Failed to fetch http://x/InRelease  Temporary failure resolving 'x'\nW: Some index files failed to download.\n"); !strings.HasPrefix(got, "W: Failed to fetch") {
		t.Errorf("warnings only: %q", got)
	}
	if got := keyLine("something\nsomething else\n\n"); got != "something else" {
		t.Errorf("no error line: %q", got)
	}
}

// TestInstallScriptsParse checks the install scripts' syntax in the real
// POSIX shell (sh -n): they run in guests only in the e2e tier.
func TestInstallScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no POSIX shell")
	}
	for _, pm := range []string{"apt-get", "dnf", "yum"} {
		script, err := installCommand(pm)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s script: %v: %s", pm, err, out)
		}
	}
	for name, script := range map[string]string{"restart": restartScript, "start": startScript, "stop": stopScript} {
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s script: %v: %s", name, err, out)
		}
	}
	if _, err := installCommand("pacman"); err == nil {
		t.Errorf("an unknown package manager was accepted")
	}
}

func TestEnableProxyOnTheHostLoopback(t *testing.T) {
	e := newEnableEnv(t)
	e.proxy = "http://127.0.0.1:3128"
	e.guest.dockerd, e.guest.load = "", "not-found"
	e.mustEnable(t)
	if drop := string(e.guest.files[DropInPath].data); !strings.Contains(drop, `"HTTP_PROXY=http://10.0.2.2:3128"`) {
		t.Errorf("drop-in:\n%s", drop)
	}
	if e.guest.count("'http_proxy=http://10.0.2.2:3128'") != 1 {
		t.Errorf("install did not get the guest's view of the proxy: %q", e.guest.cmds)
	}
}
