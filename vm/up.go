package vm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm/sshc"
)

// UpOptions say what machine `up` should bring up.
type UpOptions struct {
	Name      string
	Provider  string
	Box       BoxRequest
	CPUs      int
	MemoryMiB int
	DiskGiB   int
	Accel     string
	Network   string // "user" or "network"
	// Ports are the guest ports the services need reached from the host,
	// besides SSH (22), which is always forwarded.
	Ports []Forward
	// SSHUser is the box's login user ("vagrant").
	SSHUser string
	// BootTimeout bounds the wait for sshd (default 5 minutes).
	BootTimeout time.Duration
	// Provision runs after SSH is ready (the services' set-up), with the
	// machine-key client. It may update the machine's state, which is
	// saved afterwards.
	Provision func(ctx context.Context, c *sshc.Client, m *Machine) error
}

// Up creates the machine when it does not exist, starts it when halted,
// logs in (replacing the box's insecure key on first boot), grows its disk
// when asked, and runs Provision. On a running machine it skips the boot.
// It can be interrupted at any point; the next Up continues.
func (mgr *Manager) Up(ctx context.Context, opts UpOptions) (*Machine, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, dberr.Usage("%s", err)
	}
	unlock, err := mgr.lock(ctx, opts.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	m, err := mgr.Store.Load(opts.Name)
	if err != nil && mgr.Store.Exists(opts.Name) {
		return nil, err
	}
	if m != nil && m.Provider != opts.Provider && opts.Provider != "" {
		return nil, fmt.Errorf("machine %q was created with provider %q, not %q; destroy it first or use another --machine", m.Name, m.Provider, opts.Provider)
	}
	providerName := opts.Provider
	if m != nil {
		providerName = m.Provider
	}
	p, err := mgr.Provider(ctx, providerName)
	if err != nil {
		return nil, err
	}
	defer p.Close()

	if m == nil || m.Phase == PhaseCreating || m.Phase == "" {
		if m, err = mgr.create(ctx, p, opts, m); err != nil {
			return nil, err
		}
	}
	firstBoot := m.Phase == PhaseCreated
	recordHop(p, m)

	st, err := p.State(ctx, m)
	if err != nil {
		return nil, err
	}
	switch st {
	case StateNotCreated:
		return nil, fmt.Errorf("machine %q is recorded but its VM is gone from %s; run \"devbundle destroy -m %s\" then \"devbundle up\"", m.Name, m.Provider, m.Name)
	case StateRunning:
		mgr.IO.Infof("machine %q is already running", m.Name)
		if missing := missingForwards(m, opts.Ports); len(missing) > 0 && m.Network != NetworkModeLibvirt {
			live, ok := p.(LiveForwarder)
			if !ok {
				return nil, dberr.WithHint(
					fmt.Errorf("machine %q runs without the forwarded port(s) %s that the services now need; forwards change only while it is halted", m.Name, strings.Join(missing, ", ")),
					fmt.Sprintf("run \"devbundle halt -m %s\" and then \"devbundle up\" again", m.Name))
			}
			step := mgr.IO.StartStep("Forwarding " + strings.Join(missing, ", "))
			if err := mgr.reconcileForwards(ctx, m, opts, live.SetForwardsLive); err != nil {
				step.Fail()
				return nil, err
			}
			step.Done("")
		}
	default:
		if len(missingForwards(m, opts.Ports)) > 0 {
			r, ok := p.(ForwardReconciler)
			if !ok {
				return nil, fmt.Errorf("machine %q needs new forwarded ports and provider %q cannot add them; destroy and recreate it", m.Name, p.Name())
			}
			if err := mgr.reconcileForwards(ctx, m, opts, r.SetForwards); err != nil {
				return nil, err
			}
		}
		step := mgr.IO.StartStep("Starting VM")
		if err := p.Start(ctx, m); err != nil {
			step.Fail()
			return nil, err
		}
		step.Done(fmt.Sprintf("accelerator %s", m.Accel))
	}
	if m.Network == NetworkModeLibvirt {
		if err := mgr.resolveAddress(ctx, p, m, opts.BootTimeout); err != nil {
			return nil, err
		}
	}

	client, err := mgr.login(ctx, p, m, opts, firstBoot)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	if firstBoot {
		m.SSH.KeyReplaced = true
		if err := mgr.Store.Save(m); err != nil {
			return nil, err
		}
		if opts.DiskGiB > 0 {
			step := mgr.IO.StartStep(fmt.Sprintf("Growing the root filesystem to %d GiB", opts.DiskGiB))
			if err := growRootFS(ctx, client); err != nil {
				step.Fail()
				return nil, err
			}
			step.Done("")
		}
	}
	if err := mgr.recordHostOnlyAddress(ctx, p, client, m); err != nil {
		return nil, err
	}
	if opts.Provision != nil {
		if err := opts.Provision(ctx, client, m); err != nil {
			return nil, err
		}
	}
	m.Phase = PhaseReady
	if err := mgr.Store.Save(m); err != nil {
		return nil, err
	}
	return m, nil
}

// create makes the VM. A machine left in PhaseCreating by an interrupted
// `up` has its leftovers removed first.
func (mgr *Manager) create(ctx context.Context, p Provider, opts UpOptions, prev *Machine) (*Machine, error) {
	dir, err := mgr.Store.Ensure(opts.Name)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		mgr.IO.Debugf("machine %q was interrupted while being created; removing its leftovers", opts.Name)
		if err := p.Destroy(ctx, prev); err != nil {
			return nil, fmt.Errorf("remove the leftovers of an interrupted create: %w", err)
		}
	}

	step := mgr.IO.StartStep("Preparing box " + opts.Box.Name)
	box, err := mgr.Boxes.Ensure(ctx, opts.Box)
	if err != nil {
		step.Fail()
		return nil, err
	}
	step.Done(box.Ref.Version)

	m := &Machine{
		Name: opts.Name, Provider: p.Name(), Created: mgr.now(), Phase: PhaseCreating,
		Box: box.Ref, CPUs: opts.CPUs, MemoryMiB: opts.MemoryMiB, DiskGiB: opts.DiskGiB,
		Network: opts.Network, SSH: SSHInfo{User: opts.SSHUser},
	}
	if err := mgr.Store.Save(m); err != nil {
		return nil, err
	}
	step = mgr.IO.StartStep("Creating VM")
	created, err := p.Create(ctx, Spec{
		Name: opts.Name, Dir: dir, Disks: box.Disks, BoxOVF: box.OVF, BaseMAC: box.BaseMAC,
		CPUs: opts.CPUs, MemoryMiB: opts.MemoryMiB, DiskGiB: opts.DiskGiB, Accel: opts.Accel,
		Forwards: wantedForwards(opts.Ports),
	})
	if err != nil {
		step.Fail()
		return nil, err
	}
	step.Done(created.ID)
	for _, w := range created.Warnings {
		mgr.IO.Warnf("%s", w)
	}
	m.ID, m.Forwards, m.ConsoleLog, m.Accel = created.ID, created.Forwards, created.ConsoleLog, created.Accel
	m.Phase = PhaseCreated
	if err := mgr.Store.Save(m); err != nil {
		return nil, err
	}
	return m, nil
}

// wantedForwards is SSH plus the services' ports, host ports unassigned.
func wantedForwards(ports []Forward) []Forward {
	out := []Forward{{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1"}}
	for _, f := range ports {
		if f.Name != "ssh" {
			out = append(out, Forward{Name: f.Name, GuestPort: f.GuestPort, HostIP: "127.0.0.1"})
		}
	}
	return out
}

// missingForwards names the wanted forwards the machine lacks.
func missingForwards(m *Machine, ports []Forward) []string {
	var missing []string
	for _, w := range wantedForwards(ports) {
		if f, ok := m.Forward(w.Name); !ok || f.GuestPort != w.GuestPort {
			missing = append(missing, fmt.Sprintf("%s (guest port %d)", w.Name, w.GuestPort))
		}
	}
	return missing
}

// reconcileForwards makes the machine's forwards match what the services
// now need, through set: the provider's SetForwards on a halted machine
// (applied when it starts) or SetForwardsLive on a running one.
func (mgr *Manager) reconcileForwards(ctx context.Context, m *Machine, opts UpOptions,
	set func(context.Context, *Machine, []Forward) ([]Forward, error)) error {
	// Keep every forward already assigned, so env output stays valid for
	// services enabled earlier, and add the missing ones.
	want := append([]Forward(nil), m.Forwards...)
	for _, w := range wantedForwards(opts.Ports) {
		if f, ok := m.Forward(w.Name); ok && f.GuestPort == w.GuestPort {
			continue
		} else if ok {
			want = slices.DeleteFunc(want, func(g Forward) bool { return g.Name == w.Name })
		}
		want = append(want, w)
	}
	got, err := set(ctx, m, want)
	if err != nil {
		return err
	}
	m.Forwards = got
	return mgr.Store.Save(m)
}

// resolveAddress waits until the provider knows the address of a machine
// on a libvirt network (its DHCP lease appears a few seconds into boot)
// and records it: SSH, the services' certificates and `env` use it. A
// new address after a restart replaces the old one, and the services
// then renew their certificates for it.
func (mgr *Manager) resolveAddress(ctx context.Context, p Provider, m *Machine, timeout time.Duration) error {
	a, ok := p.(Addresser)
	if !ok {
		return fmt.Errorf("provider %q cannot tell the address of machine %q; use user-mode networking", p.Name(), m.Name)
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	step := mgr.IO.StartStep("Waiting for the VM's address")
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 250 * time.Millisecond
	for {
		ip, err := a.Address(wctx, m)
		if err == nil && ip != "" {
			if ip != m.Address {
				if m.Address != "" {
					mgr.IO.Infof("machine %q has a new address: %s (was %s)", m.Name, ip, m.Address)
				}
				m.Address = ip
				if err := mgr.Store.Save(m); err != nil {
					step.Fail()
					return err
				}
			}
			step.Done(ip)
			return nil
		}
		mgr.IO.Debugf("address of machine %q: %v", m.Name, err)
		select {
		case <-wctx.Done():
			step.Fail()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			mgr.showConsole(ctx, p, m)
			return dberr.WithHint(fmt.Errorf("machine %q got no address within %s: %w", m.Name, timeout, err),
				"check that its libvirt network hands out DHCP leases (virsh net-dhcp-leases), or use user-mode networking")
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// recordHostOnlyAddress asks the guest for the address of the machine's
// host-only adapter, when its provider gave it one, and records it (the
// services put it in their certificates; `ip` and `status` show it). An
// adapter without an address is a warning: the forwards still work.
func (mgr *Manager) recordHostOnlyAddress(ctx context.Context, p Provider, c Runner, m *Machine) error {
	h, ok := p.(HostOnlyNIC)
	if !ok {
		return nil
	}
	mac, ok, err := h.HostOnlyMAC(ctx, m)
	if err != nil || !ok {
		return err
	}
	step := mgr.IO.StartStep("Reading the host-only adapter's address")
	iface, addr, err := NICAddress(ctx, c, mac, 0)
	if err != nil {
		step.Fail()
		return err
	}
	if addr == "" {
		step.Fail()
		where := "no interface in the guest has its MAC " + mac
		if iface != "" {
			where = "interface " + iface + " has no IPv4 address and DHCP gave none"
		}
		mgr.IO.Warnf("machine %q: the host-only adapter has no address (%s); its forwards on 127.0.0.1 still work", m.Name, where)
		return nil
	}
	step.Done(iface + " " + addr)
	if addr != m.Address {
		m.Address = addr
		return mgr.Store.Save(m)
	}
	return nil
}

// login waits for sshd and logs in with the machine's key; on first boot
// it replaces the box's insecure key and pins the host key.
func (mgr *Manager) login(ctx context.Context, p Provider, m *Machine, opts UpOptions, firstBoot bool) (*sshc.Client, error) {
	addr, err := sshAddr(m)
	if err != nil {
		return nil, err
	}
	key, err := sshc.LoadOrCreateKey(mgr.machineKeyPath(m.Name), "devbundle machine "+m.Name)
	if err != nil {
		return nil, err
	}
	pin := mgr.pinning(m.Name, false)
	pinned, err := pin.PinnedKeys()
	if err != nil {
		return nil, err
	}
	if len(pinned) == 0 {
		// First boot, or the user removed known_hosts to pin a new key:
		// `up` (never `ssh`) records the key the machine presents.
		if !firstBoot {
			mgr.IO.Warnf("machine %q has no pinned SSH host key in %q; pinning the key it presents now", m.Name, pin.File)
		}
		pin.TrustOnFirstUse = true
	}
	algos, err := pin.HostKeyAlgorithms()
	if err != nil {
		return nil, err
	}
	keys := sshc.MachineKeys{Machine: key, Comment: "devbundle machine " + m.Name}
	if !m.SSH.KeyReplaced {
		insecure, err := mgr.InsecureKeys(ctx)
		if err != nil {
			return nil, err
		}
		keys.Insecure = insecure
	}
	timeout := opts.BootTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	hint := ""
	if m.ConsoleLog != "" {
		hint = "the VM's console log is " + m.ConsoleLog
	}
	step := mgr.IO.StartStep("Waiting for SSH")
	client, err := mgr.waitSSH(ctx, m, sshc.WaitOptions{
		Addr: addr, User: m.SSH.User, HostKeyCallback: pin.HostKeyCallback(),
		HostKeyAlgorithms: algos, Timeout: timeout, Hint: hint,
		OnAttempt: func(n int, err error) { mgr.IO.Debugf("ssh attempt %d: %v", n, err) },
	}, func(ctx context.Context, o sshc.WaitOptions) (*sshc.Client, error) {
		return sshc.EnsureMachineKey(ctx, o, keys)
	})
	if err != nil {
		step.Fail()
		if ctx.Err() == nil {
			mgr.showConsole(ctx, p, m)
		}
		return nil, err
	}
	step.Done(addr)
	return client, nil
}

// consoleReader is implemented by providers that can show the VM's serial
// console.
type consoleReader interface {
	ReadConsole(ctx context.Context, m *Machine, limit int64) ([]byte, error)
}

// showConsole prints the last lines of the console log after a failed boot.
func (mgr *Manager) showConsole(ctx context.Context, p Provider, m *Machine) {
	cr, ok := p.(consoleReader)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	data, err := cr.ReadConsole(ctx, m, 64<<10)
	if err != nil || len(data) == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	mgr.IO.Infof("last lines of the VM's console:")
	for _, l := range lines {
		mgr.IO.Infof("  | %s", strings.TrimRight(l, "\r"))
	}
}

// growRootFS grows the root partition and filesystem to fill the disk.
// It uses growpart or sfdisk when the guest has them; otherwise, on an MBR
// disk whose root is the last primary partition, it rewrites that
// partition's size in the MBR and tells the kernel with resizepart (both
// util-linux and coreutils are in every box). Then resize2fs, xfs_growfs or
// btrfs. A filesystem already filling its disk is left alone.
func growRootFS(ctx context.Context, c *sshc.Client) error {
	var stderr strings.Builder
	code, err := c.Run(ctx, "sudo -n sh -c "+sshc.Quote(growScript), sshc.RunOptions{Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("grow the root filesystem: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("grow the root filesystem: exit %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

const growScript = `set -e
src=$(findmnt -no SOURCE /)
fstype=$(findmnt -no FSTYPE /)
pname=$(basename "$src")
dname=$(basename "$(readlink -f /sys/class/block/$pname/..)")
disk=/dev/$dname
part=$(cat /sys/class/block/$pname/partition)
start=$(cat /sys/class/block/$pname/start)
total=$(cat /sys/class/block/$dname/size)
size=$(cat /sys/class/block/$pname/size)
want=$((total - start))
if [ "$size" -lt "$want" ]; then
  if command -v growpart >/dev/null; then
    growpart "$disk" "$part" || [ $? -eq 1 ]
  elif command -v sfdisk >/dev/null; then
    echo ", +" | sfdisk --no-reread --no-tell-kernel -q -N "$part" "$disk"
    resizepart "$disk" "$part" "$want"
  else
    [ "$part" -le 4 ] || { echo "cannot grow logical partition $src without growpart or sfdisk" >&2; exit 3; }
    type=$(od -An -tx1 -j $((446 + 16 * (part - 1) + 4)) -N1 "$disk" | tr -d ' ')
    [ "$type" != ee ] || { echo "cannot grow a GPT disk without growpart or sfdisk; install cloud-guest-utils" >&2; exit 3; }
    for other in /sys/class/block/$dname/${dname}*; do
      [ -e "$other/start" ] || continue
      [ "$(cat $other/start)" -le "$start" ] || { echo "root partition is not the last one; cannot grow it" >&2; exit 3; }
    done
    off=$((446 + 16 * (part - 1) + 12))
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((want & 255)) $(((want >> 8) & 255)) $(((want >> 16) & 255)) $(((want >> 24) & 255)))" |
      dd of="$disk" bs=1 seek="$off" conv=notrunc status=none
    sync
    resizepart "$disk" "$part" "$want"
  fi
fi
case "$fstype" in
  ext2|ext3|ext4) resize2fs "$src" >/dev/null 2>&1 || resize2fs "$src" ;;
  xfs) xfs_growfs / ;;
  btrfs) btrfs filesystem resize max / ;;
  *) echo "cannot grow a $fstype root filesystem" >&2; exit 3 ;;
esac`

func (mgr *Manager) now() time.Time {
	if mgr.Now != nil {
		return mgr.Now()
	}
	return time.Now()
}
