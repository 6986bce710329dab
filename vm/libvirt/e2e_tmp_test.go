//go:build e2e && lvexp

package libvirt

import (
	"context"
	"fmt"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

func TestExpCPUModel(t *testing.T) {
	disk := boxDisk(t)
	p := e2eProvider(t, nil)
	cleanupBase(t, p, disk.Key)
	for i, cpu := range []*libvirtxml.DomainCPU{nil, {Mode: "maximum"}, {Mode: "custom", Match: "exact", Model: &libvirtxml.DomainCPUModel{Value: "Nehalem", Fallback: "forbid"}}, nil, {Mode: "maximum"}} {
		name := fmt.Sprintf("e2e-exp%d", i)
		cleanupMachine(t, p, name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c, err := p.Create(ctx, boxSpec(t, name, disk, "tcg"))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := p.domainXML(c.ID, golibvirt.DomainXMLInactive)
		d.CPU = cpu
		if err := p.define(d); err != nil {
			t.Fatal(err)
		}
		m := &vm.Machine{Name: name, ID: c.ID}
		start := time.Now()
		if err := p.Start(ctx, m); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", c.Forwards[0].HostPort)
		for !banner(ctx, addr) {
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("cpu %+v: banner after %s", cpu, time.Since(start).Round(100*time.Millisecond))
		_ = p.Destroy(ctx, m)
	}
}
