package services

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devbundle/devbundle/internal/iostreams"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Dir is the host folder of a service of a machine.
func Dir(machineDir, service string) string { return filepath.Join(machineDir, service) }

// ProvisionOptions say which services `up` enables.
type ProvisionOptions struct {
	Registry   *Registry
	Names      []string
	MachineDir string
	Proxy      string
	IO         *iostreams.IOStreams
	// HostDialer says how the host reaches the machine's forwards
	// (vm.Manager.HostDialer); nil dials directly.
	HostDialer func(ctx context.Context, m *vm.Machine) (sshc.DialFunc, func(), error)
}

// Provision enables each named service, one step line each, and records
// what each returns in the machine's state. It is `up`'s Provision hook.
func Provision(opts ProvisionOptions) func(ctx context.Context, c *sshc.Client, m *vm.Machine) error {
	return func(ctx context.Context, c *sshc.Client, m *vm.Machine) error {
		if err := CheckAgainstEnabled(m, opts.Names); err != nil {
			return err
		}
		var dial sshc.DialFunc
		if opts.HostDialer != nil && len(opts.Names) > 0 {
			d, release, err := opts.HostDialer(ctx, m)
			if err != nil {
				return err
			}
			defer release()
			dial = d
		}
		for _, name := range opts.Names {
			svc, err := opts.Registry.Get(name)
			if err != nil {
				return err
			}
			dir := Dir(opts.MachineDir, name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			step := opts.IO.StartStep("Enabling " + name)
			state, err := svc.Enable(ctx, Context{
				Guest: c, Machine: m, Dir: dir, Proxy: opts.Proxy,
				Log:  func(format string, args ...any) { opts.IO.Debugf(format, args...) },
				Dial: dial,
			})
			if err != nil {
				step.Fail()
				return fmt.Errorf("enable %s: %w", name, err)
			}
			step.Done("")
			if m.Services == nil {
				m.Services = map[string]json.RawMessage{}
			}
			m.Services[name] = state
		}
		return nil
	}
}
