package docker

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

func machineWithState(t *testing.T, st State) *vm.Machine {
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return &vm.Machine{
		Name: "m1", Network: "user",
		Forwards: []vm.Forward{
			{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40022},
			{Name: "docker", GuestPort: 2376, HostIP: "127.0.0.1", HostPort: 40376},
		},
		Services: map[string]json.RawMessage{"docker": raw},
	}
}

func TestEnv(t *testing.T) {
	m := machineWithState(t, State{Version: "20.10.24", APIVersion: "1.41", SANs: []string{"127.0.0.1", "devbox", "localhost"}})
	dir := "/home/u/.local/share/devbundle/machines/m1/docker dir"
	info, err := New(Options{}).Env(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []envfmt.Var{
		{Name: "DOCKER_HOST", Value: "tcp://127.0.0.1:40376"},
		{Name: "DOCKER_CERT_PATH", Value: dir},
		{Name: "DOCKER_TLS_VERIFY", Value: "1"},
		{Name: "DOCKER_API_VERSION", Value: "1.41"},
	}
	if !slices.Equal(info.Vars, want) {
		t.Errorf("vars %+v, want %+v", info.Vars, want)
	}
	if info.Probe != "127.0.0.1:40376" {
		t.Errorf("probe %q", info.Probe)
	}
	if got := strings.Join(info.Comment, " "); got != "Set the following environment variables to enable access to the docker daemon running inside of the devbundle virtual machine:" {
		t.Errorf("comment %q", got)
	}
	// The comment is a copy: a caller prepending a header cannot change
	// the next call's.
	info.Comment[0] = "changed"
	again, _ := New(Options{}).Env(m, dir)
	if again.Comment[0] == "changed" {
		t.Errorf("Env returns shared comment lines")
	}
}

func TestEnvRefuses(t *testing.T) {
	good := State{Version: "20.10.24", APIVersion: "1.41", SANs: []string{"127.0.0.1", "localhost"}}
	cases := []struct {
		name  string
		setup func(m *vm.Machine)
		want  string
		hint  string
	}{
		{"never enabled", func(m *vm.Machine) { delete(m.Services, "docker") }, "never enabled", "--services docker"},
		{"no API version", func(m *vm.Machine) { m.Services["docker"] = json.RawMessage(`{"version":"20.10"}`) }, "never enabled", "--services docker"},
		{"unreadable state", func(m *vm.Machine) { m.Services["docker"] = json.RawMessage(`{"api_version":`) }, "unreadable", ""},
		{"no docker forward", func(m *vm.Machine) { m.Forwards = m.Forwards[:1] }, "no forwarded port", "devbundle halt"},
		{"address not in the certificate", func(m *vm.Machine) { m.Network, m.Address = "network", "192.168.121.50" }, "not valid for 192.168.121.50", "devbundle up"},
		{"network mode without address", func(m *vm.Machine) { m.Network = "network" }, "no address", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := machineWithState(t, good)
			tc.setup(m)
			_, err := New(Options{}).Env(m, "/d")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !errors.Is(err, dberr.ErrServiceUnavailable) || dberr.ExitCode(err) != 126 {
				t.Errorf("exit %d, want 126", dberr.ExitCode(err))
			}
			if !strings.Contains(dberr.Hint(err), tc.hint) {
				t.Errorf("hint %q, want %q in it", dberr.Hint(err), tc.hint)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message is not one line: %q", err)
			}
		})
	}
}

func TestPortsAndName(t *testing.T) {
	s := New(Options{})
	if s.Name() != "docker" {
		t.Errorf("name %q", s.Name())
	}
	if got := s.Ports(); len(got) != 1 || got[0].Name != "docker" || got[0].GuestPort != 2376 {
		t.Errorf("ports %+v", got)
	}
}

func TestReadState(t *testing.T) {
	m := machineWithState(t, State{Version: "1", APIVersion: "1.41", MinAPIVersion: "1.12"})
	st, ok, err := ReadState(m)
	if err != nil || !ok || st.APIVersion != "1.41" || st.MinAPIVersion != "1.12" {
		t.Errorf("%+v %v %v", st, ok, err)
	}
	if !strings.Contains(string(m.Services["docker"]), `"api_version":"1.41"`) {
		t.Errorf("state JSON %s", m.Services["docker"])
	}
	if _, ok, err := ReadState(&vm.Machine{}); ok || err != nil {
		t.Errorf("no state: %v %v", ok, err)
	}
}
