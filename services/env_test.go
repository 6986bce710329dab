package services

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

func TestProbeService(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	if err := ProbeService(context.Background(), tlsSrv.Listener.Addr().String()); err != nil {
		t.Errorf("a real TLS server: %v", err)
	}

	// A forward whose guest port is closed: accepts, then closes.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := ProbeService(context.Background(), l.Addr().String()); !errors.Is(err, errNoAnswer) {
		t.Errorf("accept-and-close: %v, want errNoAnswer", err)
	}

	// Nothing listens: the VM is gone.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l2.Addr().String()
	l2.Close()
	if err := ProbeService(context.Background(), addr); !errors.Is(err, errRefused) {
		t.Errorf("nothing listening: %v, want errRefused", err)
	}
}

// fakeService is a Service whose Env is fixed; only Env is used here.
type fakeService struct {
	name  string
	probe string
}

func (f fakeService) Name() string        { return f.name }
func (f fakeService) Ports() []vm.Forward { return nil }
func (f fakeService) Enable(context.Context, Context) (json.RawMessage, error) {
	return nil, errors.New("not used")
}
func (f fakeService) Start(context.Context, Context) error { return errors.New("not used") }
func (f fakeService) Stop(context.Context, Context) error  { return errors.New("not used") }
func (f fakeService) Status(context.Context, Context) (Status, error) {
	return "", errors.New("not used")
}
func (f fakeService) Env(m *vm.Machine, dir string) (EnvInfo, error) {
	return EnvInfo{Comment: []string{"about " + f.name}, Vars: []envfmt.Var{{Name: strings.ToUpper(f.name) + "_DIR", Value: dir}}, Probe: f.probe}, nil
}

func TestEnvExitKinds(t *testing.T) {
	reg := NewRegistry(fakeService{name: "docker", probe: "docker:1"}, fakeService{name: "kubernetes", probe: "kube:1"})
	m := &vm.Machine{Name: "default", Services: map[string]json.RawMessage{"docker": []byte(`{}`)}}
	base := EnvOptions{Registry: reg, Machine: m, MachineDir: "/m", Getenv: func(string) string { return "" }}

	ok := base
	ok.Probe = func(context.Context, string) error { return nil }
	blocks, err := Env(context.Background(), ok)
	if err != nil || len(blocks) != 1 || blocks[0].Comment[0] != "docker env:" || blocks[0].Vars[0].Value != "/m/docker" {
		t.Fatalf("all services: %+v, %v", blocks, err)
	}

	tests := []struct {
		name  string
		names []string
		probe error
		code  int
	}{
		{"machine gone", []string{"docker"}, errRefused, dberr.ExitMachineNotRunning},
		{"service down", []string{"docker"}, errNoAnswer, dberr.ExitServiceUnavailable},
		{"not enabled", []string{"kubernetes"}, nil, dberr.ExitServiceUnavailable},
		{"unknown", []string{"podman"}, nil, dberr.ExitServiceUnavailable},
	}
	for _, tt := range tests {
		o := base
		o.Names = tt.names
		o.Probe = func(context.Context, string) error { return tt.probe }
		_, err := Env(context.Background(), o)
		if got := dberr.ExitCode(err); got != tt.code {
			t.Errorf("%s: exit %d (%v), want %d", tt.name, got, err, tt.code)
		}
	}
}

func TestNoProxyKeepsExisting(t *testing.T) {
	m := &vm.Machine{Name: "default"}
	b := noProxyBlock(m, func(k string) string {
		if k == "NO_PROXY" {
			return "corp.example, 10.0.0.1"
		}
		return ""
	})
	if b.Vars[0].Value != "corp.example,10.0.0.1,127.0.0.1" || b.Vars[1].Value != "127.0.0.1" {
		t.Errorf("%+v", b.Vars)
	}
	m.Address = "192.0.2.7"
	b = noProxyBlock(m, func(string) string { return "192.0.2.7" })
	if b.Vars[0].Value != "192.0.2.7" {
		t.Errorf("address added twice: %+v", b.Vars)
	}
}

func TestCheckAgainstEnabled(t *testing.T) {
	m := &vm.Machine{Name: "m1", Services: map[string]json.RawMessage{"kubernetes": json.RawMessage(`{}`)}}
	err := CheckAgainstEnabled(m, []string{"docker", "openshift"})
	if err == nil || !errors.Is(err, dberr.ErrUsage) || !strings.Contains(err.Error(), `machine "m1" runs kubernetes, which excludes openshift`) {
		t.Fatalf("openshift beside kubernetes: %v", err)
	}
	for _, ok := range [][]string{{"docker"}, {"kubernetes"}, nil} {
		if err := CheckAgainstEnabled(m, ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	osm := &vm.Machine{Name: "m2", Services: map[string]json.RawMessage{"openshift": json.RawMessage(`{}`)}}
	if err := CheckAgainstEnabled(osm, []string{"kubernetes"}); err == nil {
		t.Error("kubernetes beside openshift was not refused")
	}
}

// A machine on a remote libvirt host whose forward does not answer here
// (refused or silent): 126 and the tunnel, not "machine not running".
func TestEnvRemoteMachineWithoutTunnel(t *testing.T) {
	reg := NewRegistry(fakeService{name: "docker", probe: "127.0.0.1:1"})
	m := &vm.Machine{Name: "far", Services: map[string]json.RawMessage{"docker": []byte(`{}`)},
		Via: &sshc.Hop{User: "me", Addr: "build.example:22"}}
	for _, probeErr := range []error{errRefused, errNoAnswer} {
		_, err := Env(context.Background(), EnvOptions{Registry: reg, Machine: m, MachineDir: "/m",
			Getenv: func(string) string { return "" }, Probe: func(context.Context, string) error { return probeErr }})
		if dberr.ExitCode(err) != dberr.ExitServiceUnavailable || !strings.Contains(dberr.Hint(err), `keep "devbundle tunnel -m far" running`) {
			t.Errorf("probe %v: exit %d, %v, hint %q", probeErr, dberr.ExitCode(err), err, dberr.Hint(err))
		}
	}
}
