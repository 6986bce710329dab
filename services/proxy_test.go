package services

import (
	"strings"
	"testing"

	"github.com/devbundle/devbundle/vm"
)

func TestGuestProxy(t *testing.T) {
	user := &vm.Machine{Network: "user"}
	cases := []struct {
		m       *vm.Machine
		in, out string
		warn    bool
	}{
		{user, "", "", false},
		{user, "http://proxy.example:3128", "http://proxy.example:3128", false},
		{user, "http://127.0.0.1:3128", "http://10.0.2.2:3128", false},
		{user, "http://u:p%40ss@localhost:3128/", "http://u:p%40ss@10.0.2.2:3128/", false},
		{user, "http://[::1]:8080", "http://10.0.2.2:8080", false},
		{user, "http://127.0.0.1", "http://10.0.2.2", false},
		{&vm.Machine{}, "http://127.0.0.1:3128", "http://10.0.2.2:3128", false},
		{&vm.Machine{Network: "network"}, "http://127.0.0.1:3128", "http://127.0.0.1:3128", true},
		{&vm.Machine{Network: "network"}, "http://192.168.1.5:3128", "http://192.168.1.5:3128", false},
	}
	for _, tc := range cases {
		got, warn := GuestProxy(tc.m, tc.in)
		if got != tc.out || (warn != "") != tc.warn {
			t.Errorf("%q (%s): got %q warning %q, want %q warning %v", tc.in, tc.m.Network, got, warn, tc.out, tc.warn)
		}
		if strings.Contains(warn, "p%40ss") {
			t.Errorf("warning shows the proxy password: %q", warn)
		}
	}
}
