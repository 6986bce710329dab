package services

import (
	"context"
	"fmt"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

// Target is a logged-in machine for the service commands.
type Target struct {
	Registry   *Registry
	Guest      Guest
	Machine    *vm.Machine
	MachineDir string
}

func (t Target) context(name string) Context {
	return Context{Guest: t.Guest, Machine: t.Machine, Dir: Dir(t.MachineDir, name), Log: func(string, ...any) {}}
}

// ServiceStatus is one line of `service status`.
type ServiceStatus struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Enabled bool   `json:"enabled"`
}

// StatusOf reports the named services, or every known one when names is
// empty.
func StatusOf(ctx context.Context, t Target, names []string) ([]ServiceStatus, error) {
	if len(names) == 0 {
		names = t.Registry.Names()
	}
	var out []ServiceStatus
	for _, n := range names {
		svc, err := t.Registry.Get(n)
		if err != nil {
			return nil, err
		}
		st, err := svc.Status(ctx, t.context(n))
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", n, err)
		}
		_, enabled := t.Machine.Services[n]
		out = append(out, ServiceStatus{Name: n, Status: st, Enabled: enabled})
	}
	return out, nil
}

// Actions of the service commands.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
)

// Control starts, stops or restarts a service. Restarting a stopped
// service is refused (exit 126): start it first.
func Control(ctx context.Context, t Target, name, action string) error {
	svc, err := t.Registry.Get(name)
	if err != nil {
		return err
	}
	if _, ok := t.Machine.Services[name]; !ok {
		return dberr.WithHint(dberr.ServiceUnavailable("service %q is not enabled on machine %q", name, t.Machine.Name),
			fmt.Sprintf("run \"devbundle up -m %s --services %s\"", t.Machine.Name, name))
	}
	sc := t.context(name)
	switch action {
	case ActionStart:
		return svc.Start(ctx, sc)
	case ActionStop:
		return svc.Stop(ctx, sc)
	case ActionRestart:
		st, err := svc.Status(ctx, sc)
		if err != nil {
			return err
		}
		if st != StatusRunning {
			return dberr.WithHint(dberr.ServiceUnavailable("service %q is %s; it cannot be restarted", name, st),
				fmt.Sprintf("start it first: \"devbundle service start %s\"", name))
		}
		if err := svc.Stop(ctx, sc); err != nil {
			return err
		}
		return svc.Start(ctx, sc)
	default:
		return dberr.Usage("unknown action %q; use start, stop or restart", action)
	}
}
