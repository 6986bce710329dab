package services

import (
	"slices"

	"github.com/devbundle/devbundle/internal/dberr"
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
