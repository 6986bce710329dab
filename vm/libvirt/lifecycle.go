package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// Create uploads the box's disks when they are not in the pool yet,
// decides the accelerator, makes the machine's overlay volumes, picks
// host ports for the forwards and defines the domain, without starting
// it.
//
// In user mode (the default) Created.Forwards carry host ports on
// 127.0.0.1, picked free now. In network mode nothing is forwarded:
// Created.Forwards are the spec's, host ports 0, and the guest ports are
// reached at Address. Spec.ConsoleLog is not used: QEMU's user could not
// write into the machine's folder, so the log goes into the pool folder
// (Created.ConsoleLog; read it with ReadConsole). Spec.Dir is not used
// either: everything libvirt needs lives in the pool.
func (p *Provider) Create(ctx context.Context, spec vm.Spec) (vm.Created, error) {
	defer p.watch(ctx)()
	if err := validateSpec(spec); err != nil {
		return vm.Created{}, err
	}
	name := domainName(spec.Name)
	if _, err := p.l.DomainLookupByName(name); err == nil {
		return vm.Created{}, fmt.Errorf("libvirt domain %q already exists; run \"devbundle destroy -m %s\" first", name, spec.Name)
	} else if !isLibvirtErr(err, golibvirt.ErrNoDomain) {
		return vm.Created{}, fmt.Errorf("look up domain %q: %w", name, err)
	}
	if p.opts.Network == NetworkLibvirt {
		if err := p.checkNetworkActive(p.opts.NetworkName); err != nil {
			return vm.Created{}, err
		}
	}
	pl, err := p.ensurePool(ctx)
	if err != nil {
		return vm.Created{}, err
	}
	var bases []baseImage
	for _, disk := range spec.Disks {
		b, unlock, err := p.ensureBase(ctx, pl, disk)
		if err != nil {
			return vm.Created{}, err
		}
		defer unlock()
		bases = append(bases, b)
	}
	caps, err := p.capabilities()
	if err != nil {
		return vm.Created{}, err
	}
	dec, err := p.decideAccel(ctx, spec.Accel, caps, pl, bases[0])
	if err != nil {
		return vm.Created{}, err
	}
	if dec.accel == AccelTCG && p.opts.TCGCPU == TCGCPUMax && !caps.cpuMaximum {
		return vm.Created{}, fmt.Errorf("libvirt at %q cannot emulate QEMU's \"max\" CPU model (libvirt 7.1 or newer needed); use the default TCG CPU", p.t.uri)
	}

	created := vm.Created{ID: name, Accel: dec.accel, ConsoleLog: path.Join(pl.path, consoleName(spec.Name))}
	if dec.warning != "" {
		created.Warnings = append(created.Warnings, dec.warning)
	}
	// Picking ports and defining the domain that records them happen
	// under one lock, so two creates do not pick the same ports.
	unlock, err := p.lock(ctx, "ports")
	if err != nil {
		return vm.Created{}, err
	}
	defer unlock()
	net, err := p.newNet(spec.Name, spec.Forwards, caps.userNet)
	if err != nil {
		return vm.Created{}, err
	}
	created.Forwards = net.Forwards
	if net.Mode == netLibvirt {
		created.Forwards = spec.Forwards
	}

	ok := false
	defer func() {
		if !ok {
			for i := range spec.Disks {
				_ = p.deleteVolume(pl, overlayName(spec.Name, i))
			}
			_ = p.deleteVolume(pl, consoleName(spec.Name))
		}
	}()
	var disks []string
	for i, b := range bases {
		capacity := b.virtualSize
		if i == 0 && spec.DiskGiB > 0 {
			capacity = max(capacity, uint64(spec.DiskGiB)<<30)
		}
		dp, err := p.createOverlay(pl, overlayName(spec.Name, i), b, capacity)
		if err != nil {
			return vm.Created{}, err
		}
		disks = append(disks, dp)
	}
	// A console log of an earlier machine of this name must not be taken
	// for this one's.
	if err := p.deleteVolume(pl, consoleName(spec.Name)); err != nil {
		return vm.Created{}, err
	}
	d, err := buildDomain(domainSpec{
		Name:       name,
		Accel:      dec.accel,
		CPUs:       spec.CPUs,
		MemoryMiB:  spec.MemoryMiB,
		Disks:      disks,
		ConsoleLog: created.ConsoleLog,
		CPUMaximum: p.opts.TCGCPU == TCGCPUMax,
		Net:        net,
	})
	if err != nil {
		return vm.Created{}, err
	}
	if err := p.define(d); err != nil {
		return vm.Created{}, err
	}
	ok = true
	return created, nil
}

// validateSpec reports every problem of a spec at once.
func validateSpec(spec vm.Spec) error {
	var errs []error
	if err := vm.ValidateName(spec.Name); err != nil {
		errs = append(errs, err)
	}
	if len(spec.Disks) == 0 {
		errs = append(errs, errors.New("the box has no disk image for libvirt"))
	}
	if len(spec.Disks) > 26 {
		errs = append(errs, fmt.Errorf("the box has %d disks; at most 26 can be attached", len(spec.Disks)))
	}
	if spec.CPUs < 1 {
		errs = append(errs, fmt.Errorf("CPU count %d is too small; use --cpus 1 or more", spec.CPUs))
	}
	if spec.MemoryMiB < 128 {
		errs = append(errs, fmt.Errorf("memory %d MiB is too small; use --memory 512 or more", spec.MemoryMiB))
	}
	if spec.DiskGiB < 0 {
		errs = append(errs, fmt.Errorf("disk size %d GiB is negative", spec.DiskGiB))
	}
	return errors.Join(errs...)
}

// hostCaps is what Create learns from the daemon's capabilities.
type hostCaps struct {
	kvm        bool
	kvmWhyNot  string
	arch       string
	cpuFlags   []string
	cpuMaximum bool
	userNet    string // netHostfwd or netPasst
}

func (p *Provider) capabilities() (hostCaps, error) {
	var c hostCaps
	doc, err := p.l.ConnectGetCapabilities()
	if err != nil {
		return c, fmt.Errorf("read libvirt capabilities: %w", err)
	}
	if c.arch, c.cpuFlags, err = hostCPU(doc); err != nil {
		return c, err
	}
	if c.arch != "" && c.arch != "x86_64" {
		return c, fmt.Errorf("libvirt at %q runs on %s; devbundle's libvirt provider runs x86_64 guests on x86_64 hosts only", p.t.uri, c.arch)
	}
	kvmCaps, err := p.l.ConnectGetDomainCapabilities(nil, nil, nil, golibvirt.OptString{"kvm"}, 0)
	if err != nil {
		c.kvmWhyNot = firstLine(err.Error())
	} else {
		c.kvm, c.kvmWhyNot = kvmOffered(kvmCaps)
	}
	qemuCaps, err := p.l.ConnectGetDomainCapabilities(nil, nil, nil, golibvirt.OptString{"qemu"}, 0)
	if err != nil {
		return c, fmt.Errorf("read libvirt domain capabilities: %w", err)
	}
	c.cpuMaximum = maximumCPUMode(qemuCaps)
	c.userNet = userNetMode(p.libVer, passtAvailable(qemuCaps, p.t.ssh == nil, exec.LookPath))
	return c, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// decideAccel runs the decision of accel.go, with its boot probe and
// verdict cache.
func (p *Provider) decideAccel(ctx context.Context, requested string, c hostCaps, pl pool, boot baseImage) (accelDecision, error) {
	cache := accelCache{path: path.Join(p.opts.CacheDir, accelFile)}
	key := accelKey(p.host, p.t.uri)
	in := accelInput{
		requested:  requested,
		uri:        p.t.uri,
		kvmOffered: c.kvm,
		kvmWhyNot:  c.kvmWhyNot,
		hostArch:   c.arch,
		cpuFlags:   c.cpuFlags,
		alwaysBoot: p.opts.AlwaysProbeKVM,
		remote:     p.t.ssh != nil,
		cacheFile:  cache.path,
	}
	if (requested == AccelAuto || requested == "") && c.kvm {
		v, err := cache.get(key)
		if err != nil {
			return accelDecision{}, err
		}
		in.cached = v
	}
	dec, err := decideAccel(in, time.Now())
	if err != nil {
		return dec, err
	}
	if dec.probe {
		booted, err := p.probeKVM(ctx, pl, boot, c)
		if err != nil {
			return dec, err
		}
		v := probeVerdict(booted, p.opts.KVMProbeTimeout, time.Now())
		dec = accelDecision{accel: v.Accel, remember: v}
		if v.Accel == AccelTCG {
			dec.warning = tcgWarning(v.Reason, cache.path)
		}
	}
	if dec.remember != nil {
		if err := cache.put(ctx, key, *dec.remember); err != nil {
			return dec, err
		}
	}
	return dec, nil
}

// probeKVM boots a throwaway domain from a throwaway overlay of the boot
// disk with KVM and waits for an SSH banner on a forwarded port (see
// accel.go). Everything it made is gone when it returns.
func (p *Provider) probeKVM(ctx context.Context, pl pool, boot baseImage, c hostCaps) (bool, error) {
	unlock, err := p.lock(ctx, "kvmprobe")
	if err != nil {
		return false, err
	}
	defer unlock()
	p.removeStaleProbes(pl)
	probe := fmt.Sprintf("%s%d", probePrefix, time.Now().UnixNano())
	name := domainName(probe)
	volName := overlayName(probe, 0)
	disk, err := p.createOverlay(pl, volName, boot, boot.virtualSize)
	if err != nil {
		return false, err
	}
	defer func() { _ = p.deleteVolume(pl, volName) }()
	fw, err := vm.FillForwards([]vm.Forward{{Name: "ssh", GuestPort: 22}}, vm.PortPicker{Avoid: p.usedPorts("")})
	if err != nil {
		return false, err
	}
	d, err := buildDomain(domainSpec{
		Name: name, Accel: AccelKVM, CPUs: 1, MemoryMiB: 1024, Disks: []string{disk},
		Net: netSpec{Mode: c.userNet, Forwards: fw},
	})
	if err != nil {
		return false, err
	}
	if err := p.define(d); err != nil {
		return false, err
	}
	dom, err := p.l.DomainLookupByName(name)
	if err != nil {
		return false, fmt.Errorf("look up domain %q: %w", name, err)
	}
	defer func() {
		_ = p.l.DomainDestroy(dom)
		_ = p.l.DomainUndefine(dom)
	}()
	if err := p.l.DomainCreate(dom); err != nil {
		// A KVM that cannot even start a guest has given its verdict.
		return false, nil //nolint:nilerr // the failure is the answer
	}
	pctx, cancel := context.WithTimeout(ctx, p.opts.KVMProbeTimeout)
	defer cancel()
	addr := fmt.Sprintf("%s:%d", fw[0].HostIP, fw[0].HostPort)
	for {
		if banner(pctx, addr) {
			return true, nil
		}
		select {
		case <-pctx.Done():
			if err := ctx.Err(); err != nil {
				return false, fmt.Errorf("decide between KVM and TCG: %w", err)
			}
			return false, nil
		case <-time.After(time.Second):
		}
	}
}

// probePrefix starts the machine name of every KVM probe.
const probePrefix = "kvmprobe-"

// removeStaleProbes powers off and removes what a killed probe left: a
// guest hung in KVM would otherwise spin forever.
func (p *Provider) removeStaleProbes(pl pool) {
	doms, _, err := p.l.ConnectListAllDomains(1, 0)
	if err == nil {
		for _, dom := range doms {
			if strings.HasPrefix(dom.Name, domainName(probePrefix)) {
				_ = p.l.DomainDestroy(dom)
				_ = p.l.DomainUndefine(dom)
			}
		}
	}
	if vols, err := p.volumes(pl); err == nil {
		for _, v := range vols {
			if strings.HasPrefix(v.Name, domainName(probePrefix)) {
				_ = p.deleteVolume(pl, v.Name)
			}
		}
	}
}

// usedPorts lists the host ports recorded in every devbundle domain
// except skip.
func (p *Provider) usedPorts(skip string) map[int]bool {
	used := map[int]bool{}
	doms, _, err := p.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return used
	}
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, "devbundle-") || dom.Name == skip {
			continue
		}
		d, err := p.domainXML(dom.Name, golibvirt.DomainXMLInactive)
		if err != nil {
			continue
		}
		for _, f := range netOf(d).Forwards {
			used[f.HostPort] = true
		}
	}
	return used
}

// newNet wires a new machine: forwards on 127.0.0.1 in user mode, the
// libvirt network and a MAC in network mode.
func (p *Provider) newNet(machine string, forwards []vm.Forward, userNet string) (netSpec, error) {
	if p.opts.Network == NetworkLibvirt {
		return netSpec{Mode: netLibvirt, Network: p.opts.NetworkName, MAC: machineMAC(machine)}, nil
	}
	fw, err := vm.FillForwards(forwards, vm.PortPicker{Avoid: p.usedPorts("")})
	if err != nil {
		return netSpec{}, err
	}
	return netSpec{Mode: userNet, Forwards: fw}, nil
}

// define stores a domain definition.
func (p *Provider) define(d *libvirtxml.Domain) error {
	doc, err := d.Marshal()
	if err != nil {
		return fmt.Errorf("domain %q: %w", d.Name, err)
	}
	if _, err := p.l.DomainDefineXML(doc); err != nil {
		return fmt.Errorf("define domain %q: %w", d.Name, err)
	}
	return nil
}

// domainXML reads a domain's definition; vm.ErrNotFound when it is gone.
func (p *Provider) domainXML(name string, flags golibvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	dom, err := p.lookup(name)
	if err != nil {
		return nil, err
	}
	doc, err := p.l.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, fmt.Errorf("read domain %q: %w", name, err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("read domain %q: %w", name, err)
	}
	return &d, nil
}

// lookup finds a domain; vm.ErrNotFound when it does not exist.
func (p *Provider) lookup(name string) (golibvirt.Domain, error) {
	dom, err := p.l.DomainLookupByName(name)
	if isLibvirtErr(err, golibvirt.ErrNoDomain) {
		return dom, fmt.Errorf("libvirt domain %q: %w", name, vm.ErrNotFound)
	}
	if err != nil {
		return dom, fmt.Errorf("look up domain %q: %w", name, err)
	}
	return dom, nil
}

// State maps the domain's state: gone is vm.StateNotCreated.
func (p *Provider) State(ctx context.Context, m *vm.Machine) (vm.State, error) {
	defer p.watch(ctx)()
	if err := ctx.Err(); err != nil {
		return vm.StateUnknown, err
	}
	dom, err := p.lookup(machineDomain(m))
	if errors.Is(err, vm.ErrNotFound) {
		return vm.StateNotCreated, nil
	}
	if err != nil {
		return vm.StateUnknown, err
	}
	st, _, err := p.l.DomainGetState(dom, 0)
	if isLibvirtErr(err, golibvirt.ErrNoDomain) {
		return vm.StateNotCreated, nil
	}
	if err != nil {
		return vm.StateUnknown, fmt.Errorf("state of domain %q: %w", dom.Name, err)
	}
	return mapState(golibvirt.DomainState(st)), nil
}

// mapState turns libvirt's domain state into devbundle's words.
func mapState(s golibvirt.DomainState) vm.State {
	switch s {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked, golibvirt.DomainShutdown:
		// Shutdown is "being shut down": still running.
		return vm.StateRunning
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return vm.StatePaused
	case golibvirt.DomainShutoff, golibvirt.DomainCrashed:
		return vm.StateHalted
	default:
		return vm.StateUnknown
	}
}

// Start boots the machine; one already running is left alone. Before
// QEMU would fail on them, it checks that the forwards' host ports are
// free (local daemons) and, in network mode, that the network is active.
func (p *Provider) Start(ctx context.Context, m *vm.Machine) error {
	defer p.watch(ctx)()
	if err := ctx.Err(); err != nil {
		return err
	}
	name := machineDomain(m)
	dom, err := p.lookup(name)
	if err != nil {
		return err
	}
	st, _, err := p.l.DomainGetState(dom, 0)
	if err != nil {
		return fmt.Errorf("state of domain %q: %w", name, err)
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return nil
	case golibvirt.DomainPaused:
		if err := p.l.DomainResume(dom); err != nil {
			return fmt.Errorf("resume domain %q: %w", name, err)
		}
		return nil
	}
	d, err := p.domainXML(name, golibvirt.DomainXMLInactive)
	if err != nil {
		return err
	}
	n := netOf(d)
	switch n.Mode {
	case netLibvirt:
		if err := p.checkNetworkActive(n.Network); err != nil {
			return err
		}
	case netHostfwd, netPasst:
		if p.t.ssh == nil {
			if err := vm.PortsInUse(ctx, n.Forwards); err != nil {
				return fmt.Errorf("start machine %q: %w", m.Name, err)
			}
		}
	}
	if err := p.l.DomainCreate(dom); err != nil {
		return fmt.Errorf("start domain %q: %w", name, err)
	}
	return nil
}

// defaultHaltWait bounds the ACPI shutdown when ctx has no deadline.
const defaultHaltWait = 2 * time.Minute

// Halt asks the guest to power off (ACPI), waits until it has or ctx's
// deadline passes (2 minutes without one), then powers it off. force
// powers off at once. A machine already off is fine.
func (p *Provider) Halt(ctx context.Context, m *vm.Machine, force bool) error {
	// The power-off comes after ctx's deadline: watch a little longer.
	wctx, cancel := haltWatch(ctx)
	defer cancel()
	defer p.watch(wctx)()
	name := machineDomain(m)
	dom, err := p.lookup(name)
	if err != nil {
		return err
	}
	off, err := p.isOff(dom)
	if err != nil || off {
		return err
	}
	if !force {
		wctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, defaultHaltWait)
			defer cancel()
		}
		if err := p.l.DomainShutdownFlags(dom, golibvirt.DomainShutdownAcpiPowerBtn); err != nil && !isLibvirtErr(err, golibvirt.ErrOperationInvalid) {
			return fmt.Errorf("ask domain %q to shut down: %w", name, err)
		}
		if off, err := p.waitOff(wctx, dom); err != nil || off {
			return err
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("halt machine %q: %w", m.Name, ctx.Err())
		}
	}
	if err := p.l.DomainDestroy(dom); err != nil && !isLibvirtErr(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("power off domain %q: %w", name, err)
	}
	return nil
}

// haltWatch is the context the connection is watched under during a
// halt: ctx's cancellation, or its deadline plus time for the power-off.
func haltWatch(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), d.Add(30*time.Second))
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	return wctx, func() { stop(); cancel() }
}

// waitOff polls until the domain is off or ctx ends.
func (p *Provider) waitOff(ctx context.Context, dom golibvirt.Domain) (bool, error) {
	for {
		off, err := p.isOff(dom)
		if err != nil || off {
			return off, err
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// isOff tells whether a domain is not running.
func (p *Provider) isOff(dom golibvirt.Domain) (bool, error) {
	active, err := p.l.DomainIsActive(dom)
	if err != nil {
		return false, fmt.Errorf("state of domain %q: %w", dom.Name, err)
	}
	return active == 0, nil
}

// Destroy powers the machine off, undefines its domain (with managed save,
// snapshot and checkpoint metadata and NVRAM) and deletes its volumes and
// console log. The base images stay. A machine already gone is fine.
func (p *Provider) Destroy(ctx context.Context, m *vm.Machine) error {
	defer p.watch(ctx)()
	if err := ctx.Err(); err != nil {
		return err
	}
	name := machineDomain(m)
	var disks []string
	dom, err := p.lookup(name)
	switch {
	case errors.Is(err, vm.ErrNotFound):
	case err != nil:
		return err
	default:
		if d, err := p.domainXML(name, golibvirt.DomainXMLInactive); err == nil {
			disks = diskPaths(d)
		}
		if err := p.l.DomainDestroy(dom); err != nil && !isLibvirtErr(err, golibvirt.ErrOperationInvalid) && !isLibvirtErr(err, golibvirt.ErrNoDomain) {
			return fmt.Errorf("power off domain %q: %w", name, err)
		}
		flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
			golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata
		if err := p.l.DomainUndefineFlags(dom, flags); err != nil && !isLibvirtErr(err, golibvirt.ErrNoDomain) {
			return fmt.Errorf("undefine domain %q: %w", name, err)
		}
	}
	pl, err := p.existingPool(ctx)
	if errors.Is(err, errNoPool) {
		return nil
	}
	if err != nil {
		return err
	}
	vols, err := p.volumes(pl)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vols {
		mine := ownedBy(v.Name, m.Name)
		for _, dp := range disks {
			if v.Target != nil && v.Target.Path == dp && !strings.HasPrefix(v.Name, basePrefix) {
				mine = true
			}
		}
		if mine {
			if err := p.deleteVolume(pl, v.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SetForwards redefines the machine's domain with forwards (host ports
// left 0 are picked free); it takes effect at the next start. In network
// mode there is nothing to forward and forwards come back as they are.
func (p *Provider) SetForwards(ctx context.Context, m *vm.Machine, forwards []vm.Forward) ([]vm.Forward, error) {
	return p.setForwards(ctx, m, forwards, false)
}

// SetForwardsLive changes the forwards of a running machine at once:
// QEMU's monitor adds and removes hostfwd rules on the user-mode netdev,
// and the domain's definition records them for the next start. Only the
// hostfwd network (libvirt before 9.2) can change while the VM runs.
func (p *Provider) SetForwardsLive(ctx context.Context, m *vm.Machine, forwards []vm.Forward) ([]vm.Forward, error) {
	return p.setForwards(ctx, m, forwards, true)
}

func (p *Provider) setForwards(ctx context.Context, m *vm.Machine, forwards []vm.Forward, live bool) ([]vm.Forward, error) {
	defer p.watch(ctx)()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := machineDomain(m)
	d, err := p.domainXML(name, golibvirt.DomainXMLInactive)
	if err != nil {
		return nil, err
	}
	n := netOf(d)
	switch {
	case n.Mode == netLibvirt:
		return forwards, nil
	case n.Mode == "":
		return nil, fmt.Errorf("domain %q was not networked by devbundle; destroy and recreate machine %q", name, m.Name)
	case live && n.Mode != netHostfwd:
		return nil, fmt.Errorf("the forwards of machine %q change only while it is halted (%s networking)", m.Name, n.Mode)
	}
	unlock, err := p.lock(ctx, "ports")
	if err != nil {
		return nil, err
	}
	defer unlock()
	fw, err := vm.FillForwards(forwards, vm.PortPicker{Avoid: p.usedPorts(name)})
	if err != nil {
		return nil, err
	}
	if live {
		if err := p.changeHostfwds(name, n.Forwards, fw); err != nil {
			return nil, err
		}
	}
	n.Forwards = fw
	if err := applyNet(d, n); err != nil {
		return nil, err
	}
	if err := p.define(d); err != nil {
		return nil, err
	}
	return fw, nil
}

// hmpFlag makes QEMUDomainMonitorCommand take a human monitor command
// (VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP).
const hmpFlag = 1

// changeHostfwds turns the running domain's hostfwd rules from old into
// want through QEMU's monitor.
func (p *Provider) changeHostfwds(name string, old, want []vm.Forward) error {
	dom, err := p.lookup(name)
	if err != nil {
		return err
	}
	// hostfwd_add says nothing when it works; hostfwd_remove says
	// "host forwarding rule for ... removed". Anything else is an error.
	hmp := func(cmd, okSuffix string) error {
		out, err := p.l.QEMUDomainMonitorCommand(dom, cmd, hmpFlag)
		if err != nil {
			return fmt.Errorf("QEMU monitor %q on domain %q: %w", cmd, name, err)
		}
		if out = strings.TrimSpace(out); out != "" && (okSuffix == "" || !strings.HasSuffix(out, okSuffix)) {
			return fmt.Errorf("QEMU monitor %q on domain %q: %s", cmd, name, firstLine(out))
		}
		return nil
	}
	for _, o := range old {
		if !hasRule(want, o) {
			if err := hmp(fmt.Sprintf("hostfwd_remove net0 tcp:%s:%d", o.HostIP, o.HostPort), " removed"); err != nil {
				return err
			}
		}
	}
	for _, f := range want {
		if !hasRule(old, f) {
			if err := hmp(fmt.Sprintf("hostfwd_add net0 tcp:%s:%d-:%d", f.HostIP, f.HostPort, f.GuestPort), ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasRule reports whether list holds the same hostfwd rule as f.
func hasRule(list []vm.Forward, f vm.Forward) bool {
	for _, g := range list {
		if g.HostIP == f.HostIP && g.HostPort == f.HostPort && g.GuestPort == f.GuestPort {
			return true
		}
	}
	return false
}
