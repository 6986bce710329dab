package services

import (
	"fmt"
	"slices"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

// exclusive are services that cannot run together: both kubernetes and
// openshift run a Kubernetes control plane on the same ports.
var exclusive = [][2]string{{"kubernetes", "openshift"}}

// CheckExclusive refuses (usage error, exit 1) a list of services that
// holds two that exclude each other.
func CheckExclusive(names []string) error {
	for _, pair := range exclusive {
		if slices.Contains(names, pair[0]) && slices.Contains(names, pair[1]) {
			return dberr.Usage("--services: %s and %s exclude each other (both run a Kubernetes control plane); pick one", pair[0], pair[1])
		}
	}
	return nil
}

// CheckAgainstEnabled refuses to enable a service that excludes one the
// machine already runs from an earlier `up`.
func CheckAgainstEnabled(m *vm.Machine, names []string) error {
	for _, pair := range exclusive {
		for _, p := range [][2]string{pair, {pair[1], pair[0]}} {
			if _, on := m.Services[p[0]]; on && slices.Contains(names, p[1]) && !slices.Contains(names, p[0]) {
				return dberr.WithHint(
					dberr.Usage("machine %q runs %s, which excludes %s (both run a Kubernetes control plane)", m.Name, p[0], p[1]),
					fmt.Sprintf("use another machine (\"devbundle -m NAME up --services %s\") or destroy this one first", p[1]))
			}
		}
	}
	return nil
}
