package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// info reads a VM's settings and state; vm.ErrNotFound when it is gone.
func (p *Provider) info(ctx context.Context, nameOrUUID string) (vmInfo, error) {
	out, err := p.v.run(ctx, "showvminfo", nameOrUUID, "--machinereadable")
	if err != nil {
		return vmInfo{}, err
	}
	return parseMachineReadable(out)
}

// machineVMs finds the VMs of a machine: the one its ID names or, when no
// ID was recorded (an interrupted create), those named for it.
func (p *Provider) machineVMs(ctx context.Context, m *vm.Machine) ([]vmInfo, error) {
	if m.ID != "" {
		info, err := p.info(ctx, m.ID)
		if errors.Is(err, vm.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []vmInfo{info}, nil
	}
	out, err := p.v.run(ctx, "list", "vms")
	if err != nil {
		return nil, fmt.Errorf("list VirtualBox VMs: %w", err)
	}
	var found []vmInfo
	for _, e := range parseListVMs(out) {
		if !ownVMName(e.Name, m.Name) {
			continue
		}
		info, err := p.info(ctx, e.UUID)
		if errors.Is(err, vm.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.opts.MachinesDir != "" && !within(info.CfgFile, filepath.Join(p.opts.MachinesDir, m.Name)) {
			continue // another devbundle data folder's machine of that name
		}
		found = append(found, info)
	}
	return found, nil
}

// within tells whether path lies inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..")
}

// State reports the machine's power state; StateNotCreated when its VM is
// gone.
func (p *Provider) State(ctx context.Context, m *vm.Machine) (vm.State, error) {
	vms, err := p.machineVMs(ctx, m)
	if err != nil {
		return vm.StateUnknown, err
	}
	switch len(vms) {
	case 0:
		return vm.StateNotCreated, nil
	case 1:
		return mapState(vms[0].State), nil
	default:
		return vm.StateUnknown, fmt.Errorf("machine %q has %d VirtualBox VMs and no recorded ID; run \"devbundle destroy -m %s\"", m.Name, len(vms), m.Name)
	}
}

// one returns the machine's recorded VM.
func (p *Provider) one(ctx context.Context, m *vm.Machine) (vmInfo, error) {
	if m.ID == "" {
		return vmInfo{}, fmt.Errorf("machine %q has no VirtualBox VM recorded: %w; run \"devbundle destroy -m %s\" and \"devbundle up\"", m.Name, vm.ErrNotFound, m.Name)
	}
	info, err := p.info(ctx, m.ID)
	if errors.Is(err, vm.ErrNotFound) {
		return vmInfo{}, fmt.Errorf("machine %q: VirtualBox VM %s is gone: %w; run \"devbundle destroy -m %s\" and \"devbundle up\"", m.Name, m.ID, vm.ErrNotFound, m.Name)
	}
	return info, err
}

// Start boots the VM headless; one already running is left alone and a
// paused one resumed. It first checks that the forwards' host ports are
// free: VirtualBox would start anyway with the forward dead.
func (p *Provider) Start(ctx context.Context, m *vm.Machine) error {
	info, err := p.one(ctx, m)
	if err != nil {
		return err
	}
	switch mapState(info.State) {
	case vm.StateRunning:
		return nil
	case vm.StatePaused:
		if _, err := p.v.run(ctx, "controlvm", info.UUID, "resume"); err != nil {
			return fmt.Errorf("resume machine %q: %w", m.Name, err)
		}
		return nil
	}
	if err := portsInUse(ctx, info.Forwards); err != nil {
		return fmt.Errorf("start machine %q: %w", m.Name, err)
	}
	if _, err := p.v.run(ctx, "startvm", info.UUID, "--type", "headless"); err != nil {
		return fmt.Errorf("start machine %q: %w", m.Name, err)
	}
	return nil
}

// defaultHaltWait bounds the ACPI shutdown when ctx has no deadline.
const defaultHaltWait = 2 * time.Minute

// Halt presses the VM's ACPI power button, waits until the guest has
// powered off or ctx's deadline passes (2 minutes without one), then
// powers it off. force powers off at once. A VM already off (or saved) is
// left as it is.
func (p *Provider) Halt(ctx context.Context, m *vm.Machine, force bool) error {
	info, err := p.one(ctx, m)
	if err != nil {
		return err
	}
	st := mapState(info.State)
	if st == vm.StateHalted {
		return nil
	}
	if !force && st == vm.StateRunning {
		wctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, defaultHaltWait)
			defer cancel()
		}
		_, err := p.v.run(wctx, "controlvm", info.UUID, "acpipowerbutton")
		switch {
		case isNotRunning(err):
			return nil
		case err != nil && wctx.Err() == nil:
			return fmt.Errorf("press the ACPI power button of machine %q: %w", m.Name, err)
		case err == nil:
			if off, err := p.waitOff(wctx, info.UUID); err != nil || off {
				return err
			}
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("halt machine %q: %w", m.Name, ctx.Err())
		}
	}
	// The power-off comes after the graceful wait's deadline: give it
	// time of its own.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := p.v.run(pctx, "controlvm", info.UUID, "poweroff"); err != nil && !isNotRunning(err) {
		return fmt.Errorf("power off machine %q: %w", m.Name, err)
	}
	return nil
}

// waitOff polls the VM's state until it is off or ctx ends.
func (p *Provider) waitOff(ctx context.Context, uuid string) (bool, error) {
	poll := p.haltPoll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	for {
		info, err := p.info(ctx, uuid)
		if ctx.Err() != nil {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if mapState(info.State) == vm.StateHalted {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(poll):
		}
	}
}

// Destroy powers the VM off, unregisters it deleting its disks and
// settings, and removes what is left of its folder. A machine whose VM is
// already gone is fine.
func (p *Provider) Destroy(ctx context.Context, m *vm.Machine) error {
	vms, err := p.machineVMs(ctx, m)
	if err != nil {
		return err
	}
	var errs []error
	for _, info := range vms {
		if err := p.destroyVM(ctx, info); err != nil {
			errs = append(errs, fmt.Errorf("destroy machine %q: %w", m.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) destroyVM(ctx context.Context, info vmInfo) error {
	if st := mapState(info.State); st != vm.StateHalted {
		if _, err := p.v.run(ctx, "controlvm", info.UUID, "poweroff"); err != nil && !isNotRunning(err) && !errors.Is(err, vm.ErrNotFound) {
			return fmt.Errorf("power off VM %q: %w", info.Name, err)
		}
	}
	// Right after a power-off the VM's session is still being unlocked:
	// the seam retries that.
	if _, err := p.v.run(ctx, "unregistervm", info.UUID, "--delete"); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return fmt.Errorf("unregister VM %q: %w", info.Name, err)
	}
	// --delete removes the files VirtualBox knows (settings, disks, logs);
	// the console log and the folder stay. Only a folder named for the VM
	// is removed.
	if info.CfgFile != "" {
		dir := filepath.Dir(info.CfgFile)
		if filepath.Base(dir) == info.Name && strings.HasPrefix(info.Name, vmPrefix) {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove the folder of VM %q: %w", info.Name, err)
			}
		}
	}
	return nil
}

// SetForwards replaces the NAT rules of a halted machine with forwards
// (host ports left 0 are picked free); they take effect at the next start.
func (p *Provider) SetForwards(ctx context.Context, m *vm.Machine, forwards []vm.Forward) ([]vm.Forward, error) {
	info, err := p.one(ctx, m)
	if err != nil {
		return nil, err
	}
	if st := mapState(info.State); st != vm.StateHalted || info.State == "saved" {
		return nil, fmt.Errorf("machine %q is %s; its forwards change only while it is powered off: run \"devbundle halt -m %s\" first", m.Name, info.State, m.Name)
	}
	unlock, err := p.lock(ctx, "ports")
	if err != nil {
		return nil, err
	}
	defer unlock()
	fw, err := p.fillForwards(ctx, forwards, info.UUID)
	if err != nil {
		return nil, err
	}
	args := []string{"modifyvm", info.UUID}
	for _, r := range info.Forwards {
		args = append(args, "--natpf1", "delete", r.Name)
	}
	if len(info.Forwards) > 0 {
		if _, err := p.v.run(ctx, args...); err != nil {
			return nil, fmt.Errorf("remove the forwards of machine %q: %w", m.Name, err)
		}
	}
	args = []string{"modifyvm", info.UUID}
	for _, f := range fw {
		args = append(args, "--natpf1", ruleFor(f).String())
	}
	if len(fw) > 0 {
		if _, err := p.v.run(ctx, args...); err != nil {
			return nil, fmt.Errorf("set the forwards of machine %q: %w", m.Name, err)
		}
	}
	return fw, nil
}

// ReadConsole returns the last limit bytes of the machine's serial
// console log.
func (p *Provider) ReadConsole(_ context.Context, m *vm.Machine, limit int64) ([]byte, error) {
	if m.ConsoleLog == "" {
		return nil, nil
	}
	f, err := os.Open(m.ConsoleLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if limit > 0 && st.Size() > limit {
		if _, err := f.Seek(-limit, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

// SetForwardsLive changes the NAT rules of a running VM at once with
// "controlvm natpf1" (one rule per call; the settings keep them for later
// starts). A powered-off VM takes SetForwards.
func (p *Provider) SetForwardsLive(ctx context.Context, m *vm.Machine, forwards []vm.Forward) ([]vm.Forward, error) {
	info, err := p.one(ctx, m)
	if err != nil {
		return nil, err
	}
	if mapState(info.State) != vm.StateRunning {
		return p.SetForwards(ctx, m, forwards)
	}
	unlock, err := p.lock(ctx, "ports")
	if err != nil {
		return nil, err
	}
	defer unlock()
	fw, err := p.fillForwards(ctx, forwards, info.UUID)
	if err != nil {
		return nil, err
	}
	want := map[string]natRule{}
	for _, f := range fw {
		want[f.Name] = ruleFor(f)
	}
	have := map[string]bool{}
	for _, r := range info.Forwards {
		if w, ok := want[r.Name]; ok && w.Proto == r.Proto && w.HostIP == r.HostIP && w.HostPort == r.HostPort && w.GuestPort == r.GuestPort {
			have[r.Name] = true
			continue
		}
		if _, err := p.v.run(ctx, "controlvm", info.UUID, "natpf1", "delete", r.Name); err != nil {
			return nil, fmt.Errorf("remove forward %q of running machine %q: %w", r.Name, m.Name, err)
		}
	}
	for _, f := range fw {
		if have[f.Name] {
			continue
		}
		if _, err := p.v.run(ctx, "controlvm", info.UUID, "natpf1", ruleFor(f).String()); err != nil {
			return nil, fmt.Errorf("add forward %q to running machine %q: %w", f.Name, m.Name, err)
		}
	}
	return fw, nil
}

// HostOnlyMAC returns the MAC of the machine's second adapter when it is
// on a host-only adapter or network (showvminfo's nic2 and macaddress2).
func (p *Provider) HostOnlyMAC(ctx context.Context, m *vm.Machine) (string, bool, error) {
	info, err := p.one(ctx, m)
	if err != nil {
		return "", false, err
	}
	switch info.Raw["nic2"] {
	case "hostonly", "hostonlynet", "hostonlynetwork": // VirtualBox 7 prints host-only networks as "hostonlynetwork"
	default:
		return "", false, nil
	}
	raw := strings.ToLower(info.Raw["macaddress2"])
	if len(raw) != 12 {
		return "", false, fmt.Errorf("machine %q: showvminfo gives adapter 2 the MAC %q, not 12 hex digits", m.Name, info.Raw["macaddress2"])
	}
	var parts []string
	for i := 0; i < 12; i += 2 {
		parts = append(parts, raw[i:i+2])
	}
	mac := strings.Join(parts, ":")
	if _, err := net.ParseMAC(mac); err != nil {
		return "", false, fmt.Errorf("machine %q: adapter 2's MAC %q: %w", m.Name, info.Raw["macaddress2"], err)
	}
	return mac, true, nil
}
