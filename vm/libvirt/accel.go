package libvirt

// Choosing the accelerator.
//
// "kvm" and "tcg" (Spec.Accel) are obeyed as asked; "kvm" fails when the
// daemon offers no KVM. "auto" (or empty) decides:
//
//  1. The domain capabilities for virttype kvm (ConnectGetDomainCapabilities)
//     must succeed and name domain type "kvm"; otherwise TCG, with a
//     warning.
//  2. A verdict remembered for this libvirt host (accel.json in the cache
//     folder, keyed by the daemon's hostname and the URI) is reused, so
//     the steps below cost time once per host.
//  3. Shortcut: on an x86_64 host whose CPU, as the daemon's host
//     capabilities describe it, has neither the vmx nor the svm flag, the
//     KVM on offer is a paravirtual one (kvm_pvm and the like, found inside
//     cloud VMs): it runs only guest kernels made for it and hangs stock
//     kernels early, so the verdict is TCG without booting anything. This
//     is the case on devbundle's own test machines.
//  4. Otherwise a guest must prove it: a throwaway domain boots the box's
//     disk (a throwaway overlay of the uploaded base) with KVM, and KVM is
//     kept when its sshd sends a banner on the forwarded port before
//     Options.KVMProbeTimeout; if not, the verdict is TCG. An SSH banner
//     is the one sign of life every Vagrant box gives (the serial console
//     is silent on boxes that do not log to ttyS0). On a remote daemon the
//     forward sits on the remote loopback, out of reach, so there KVM is
//     trusted once step 3 has passed.
//
// Options.AlwaysProbeKVM skips step 3, so tests can exercise step 4.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/filelock"
)

// Accelerators.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// accelFile is the verdict cache in Options.CacheDir.
const accelFile = "accel.json"

// verdict is what a host's KVM was found to do.
type verdict struct {
	Accel   string    `json:"accel"`  // kvm or tcg
	Reason  string    `json:"reason"` // why, for the warning
	Decided time.Time `json:"decided"`
}

// accelInput is everything the decision looks at.
type accelInput struct {
	requested  string   // Spec.Accel
	uri        string   // for messages
	kvmOffered bool     // domain capabilities offer kvm
	kvmWhyNot  string   // why not, when not
	hostArch   string   // from the host capabilities
	cpuFlags   []string // host CPU feature names; nil when unknown
	cached     *verdict // remembered for this host
	alwaysBoot bool     // skip the CPU-flag shortcut
	remote     bool     // forwards are out of reach: no boot probe
	cacheFile  string   // for messages
}

// accelDecision is the outcome; probe means a boot must decide, and
// remember says the verdict is new and must be saved.
type accelDecision struct {
	accel    string
	warning  string
	probe    bool
	remember *verdict
}

// decideAccel applies the rules in this file's comment, steps 1 to 3.
func decideAccel(in accelInput, now time.Time) (accelDecision, error) {
	switch in.requested {
	case AccelTCG:
		return accelDecision{accel: AccelTCG}, nil
	case AccelKVM:
		if !in.kvmOffered {
			return accelDecision{}, fmt.Errorf("accelerator \"kvm\" was asked for but libvirt at %q offers no KVM (%s); check that /dev/kvm exists and is usable, or use --accel tcg", in.uri, in.kvmWhyNot)
		}
		return accelDecision{accel: AccelKVM}, nil
	case AccelAuto, "":
	default:
		return accelDecision{}, fmt.Errorf("accelerator %q is not known; use auto, kvm or tcg", in.requested)
	}
	if !in.kvmOffered {
		return accelDecision{accel: AccelTCG, warning: fmt.Sprintf(
			"KVM is not available (%s): using software emulation (TCG), which is much slower", in.kvmWhyNot)}, nil
	}
	if in.cached != nil {
		d := accelDecision{accel: in.cached.Accel}
		if d.accel == AccelTCG {
			d.warning = tcgWarning(in.cached.Reason, in.cacheFile)
		}
		return d, nil
	}
	if !in.alwaysBoot && isX86(in.hostArch) && in.cpuFlags != nil &&
		!slices.Contains(in.cpuFlags, "vmx") && !slices.Contains(in.cpuFlags, "svm") {
		v := &verdict{Accel: AccelTCG, Decided: now,
			Reason: "the host CPU has no vmx or svm flag, so its KVM is a paravirtual one that hangs stock kernels"}
		return accelDecision{accel: AccelTCG, warning: tcgWarning(v.Reason, in.cacheFile), remember: v}, nil
	}
	if in.remote {
		v := &verdict{Accel: AccelKVM, Decided: now, Reason: "offered by a remote host whose CPU has hardware virtualisation"}
		return accelDecision{accel: AccelKVM, remember: v}, nil
	}
	return accelDecision{accel: AccelKVM, probe: true}, nil
}

// tcgWarning is the one line shown when KVM is offered but not used.
func tcgWarning(reason, file string) string {
	return fmt.Sprintf("KVM is offered but not used (%s): using software emulation (TCG), which is much slower; --accel kvm overrides, deleting %q re-checks", reason, file)
}

// probeVerdict turns the boot probe's outcome into a verdict.
func probeVerdict(booted bool, timeout time.Duration, now time.Time) *verdict {
	if booted {
		return &verdict{Accel: AccelKVM, Decided: now, Reason: "a guest booted to sshd with KVM"}
	}
	return &verdict{Accel: AccelTCG, Decided: now,
		Reason: fmt.Sprintf("a guest started with KVM gave no SSH banner within %s", timeout.Round(time.Second))}
}

func isX86(arch string) bool { return arch == "x86_64" || arch == "i686" }

// kvmOffered reads a domain capabilities document asked for virttype kvm.
func kvmOffered(domCaps string) (bool, string) {
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(domCaps); err != nil {
		return false, fmt.Sprintf("domain capabilities unreadable: %v", err)
	}
	if dc.Domain != "kvm" {
		return false, fmt.Sprintf("domain capabilities name %q, not kvm", dc.Domain)
	}
	return true, ""
}

// maximumCPUMode tells whether a domain capabilities document supports
// <cpu mode='maximum'> (QEMU's "-cpu max"), the fullest CPU under TCG.
func maximumCPUMode(domCaps string) bool {
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(domCaps); err != nil || dc.CPU == nil {
		return false
	}
	for _, m := range dc.CPU.Modes {
		if m.Name == "maximum" && m.Supported == "yes" {
			return true
		}
	}
	return false
}

// hostCPU reads the host's architecture and CPU flags from a host
// capabilities document; flags is nil when the daemon lists none.
func hostCPU(caps string) (arch string, flags []string, err error) {
	var c libvirtxml.Caps
	if err := c.Unmarshal(caps); err != nil {
		return "", nil, fmt.Errorf("read host capabilities: %w", err)
	}
	cpu := c.Host.CPU
	if cpu == nil {
		return "", nil, nil
	}
	if len(cpu.FeatureFlags) == 0 && cpu.Features == nil {
		return cpu.Arch, nil, nil
	}
	flags = []string{}
	for _, f := range cpu.FeatureFlags {
		flags = append(flags, f.Name)
	}
	if cpu.Features != nil {
		if cpu.Features.VMX != nil {
			flags = append(flags, "vmx")
		}
		if cpu.Features.SVM != nil {
			flags = append(flags, "svm")
		}
	}
	return cpu.Arch, flags, nil
}

// accelCache is the verdict file, shared by every devbundle process of
// the user.
type accelCache struct {
	path string
}

// accelKey names a libvirt host in the cache: its hostname and the URI.
func accelKey(hostname, uri string) string { return hostname + " " + uri }

func (c accelCache) load() (map[string]verdict, error) {
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]verdict{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read accelerator verdicts: %w", err)
	}
	m := map[string]verdict{}
	if err := json.Unmarshal(data, &m); err != nil {
		// A damaged cache only costs a new probe.
		return map[string]verdict{}, nil
	}
	return m, nil
}

func (c accelCache) get(key string) (*verdict, error) {
	m, err := c.load()
	if err != nil {
		return nil, err
	}
	v, ok := m[key]
	if !ok || (v.Accel != AccelKVM && v.Accel != AccelTCG) {
		return nil, nil
	}
	return &v, nil
}

func (c accelCache) put(ctx context.Context, key string, v verdict) error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save accelerator verdict: %w", err)
	}
	unlock, err := filelock.Lock(ctx, c.path+".lock")
	if err != nil {
		return fmt.Errorf("save accelerator verdict: %w", err)
	}
	defer func() { _ = unlock() }()
	m, err := c.load()
	if err != nil {
		return err
	}
	m[key] = v
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save accelerator verdict: %w", err)
	}
	return nil
}

// domainType is the libvirt domain type of an accelerator.
func domainType(accel string) string {
	if accel == AccelKVM {
		return "kvm"
	}
	return "qemu"
}

// accelOf reads the accelerator back from a domain type.
func accelOf(domType string) string {
	if strings.EqualFold(domType, "kvm") {
		return AccelKVM
	}
	return AccelTCG
}
