package libvirt

import (
	"fmt"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/devbundle/devbundle/vm"
)

func TestMapState(t *testing.T) {
	for s, want := range map[golibvirt.DomainState]vm.State{
		golibvirt.DomainNostate:     vm.StateUnknown,
		golibvirt.DomainRunning:     vm.StateRunning,
		golibvirt.DomainBlocked:     vm.StateRunning,
		golibvirt.DomainShutdown:    vm.StateRunning,
		golibvirt.DomainPaused:      vm.StatePaused,
		golibvirt.DomainPmsuspended: vm.StatePaused,
		golibvirt.DomainShutoff:     vm.StateHalted,
		golibvirt.DomainCrashed:     vm.StateHalted,
	} {
		if got := mapState(s); got != want {
			t.Errorf("mapState(%d) = %q, want %q", s, got, want)
		}
	}
}

func TestIsLibvirtErrWrapped(t *testing.T) {
	err := fmt.Errorf("look up: %w", golibvirt.Error{Code: uint32(golibvirt.ErrNoDomain), Message: "Domain not found"})
	if !isLibvirtErr(err, golibvirt.ErrNoDomain) || isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		t.Fatal("isLibvirtErr misreads a wrapped libvirt error")
	}
}

func TestMachineDomain(t *testing.T) {
	if got := machineDomain(&vm.Machine{Name: "web"}); got != "devbundle-web" {
		t.Errorf("machineDomain without ID = %q", got)
	}
	if got := machineDomain(&vm.Machine{Name: "web", ID: "devbundle-old"}); got != "devbundle-old" {
		t.Errorf("machineDomain with ID = %q", got)
	}
}
