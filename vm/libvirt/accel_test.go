package libvirt

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Documents shaped like libvirt 9.0's on this project's test machines: a
// paravirtual KVM inside a cloud VM (no vmx flag), and a plain Intel host.
const (
	domCapsKVM = `<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <domain>kvm</domain>
  <machine>pc-i440fx-7.2</machine>
  <arch>x86_64</arch>
  <cpu><mode name='host-passthrough' supported='yes'/><mode name='maximum' supported='yes'/></cpu>
</domainCapabilities>`
	domCapsQEMU = `<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <domain>qemu</domain>
  <arch>x86_64</arch>
  <cpu><mode name='host-passthrough' supported='no'/><mode name='maximum' supported='yes'/></cpu>
</domainCapabilities>`
	hostCapsPVM = `<capabilities><host><uuid>6d1f0889-6126-4730-b82f-1833b8a56e12</uuid>
  <cpu><arch>x86_64</arch><model>Broadwell-noTSX-IBRS</model><vendor>Intel</vendor>
    <feature name='vme'/><feature name='ss'/><feature name='hypervisor'/><feature name='avx512f'/>
  </cpu></host></capabilities>`
	hostCapsVMX = `<capabilities><host>
  <cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model><vendor>Intel</vendor>
    <feature name='ds'/><feature name='vmx'/><feature name='ht'/>
  </cpu></host></capabilities>`
	hostCapsNoFlags = `<capabilities><host><cpu><arch>x86_64</arch></cpu></host></capabilities>`
)

func TestCapsParsing(t *testing.T) {
	if ok, why := kvmOffered(domCapsKVM); !ok {
		t.Errorf("kvm caps: not offered (%s)", why)
	}
	if ok, why := kvmOffered(domCapsQEMU); ok || !strings.Contains(why, `"qemu"`) {
		t.Errorf("qemu caps: offered=%v why=%q", ok, why)
	}
	if ok, _ := kvmOffered("<not xml"); ok {
		t.Error("garbage offered kvm")
	}
	if !maximumCPUMode(domCapsQEMU) || maximumCPUMode(`<domainCapabilities><cpu><mode name='maximum' supported='no'/></cpu></domainCapabilities>`) {
		t.Error("maximumCPUMode misreads the document")
	}
	arch, flags, err := hostCPU(hostCapsPVM)
	if err != nil || arch != "x86_64" || len(flags) != 4 || flags[2] != "hypervisor" {
		t.Errorf("hostCPU(pvm) = %q %q %v", arch, flags, err)
	}
	_, flags, _ = hostCPU(hostCapsNoFlags)
	if flags != nil {
		t.Errorf("hostCPU without features = %q, want nil (unknown)", flags)
	}
	_, flags, _ = hostCPU(`<capabilities><host><cpu><arch>x86_64</arch><features><svm/></features></cpu></host></capabilities>`)
	if len(flags) != 1 || flags[0] != "svm" {
		t.Errorf("hostCPU(<features><svm/>) = %q", flags)
	}
}

func TestDecideAccel(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	_, pvmFlags, _ := hostCPU(hostCapsPVM)
	_, vmxFlags, _ := hostCPU(hostCapsVMX)
	kvm, _ := kvmOffered(domCapsKVM)
	base := accelInput{uri: "qemu:///system", kvmOffered: kvm, hostArch: "x86_64", cacheFile: "/c/accel.json"}
	tests := []struct {
		name     string
		mod      func(*accelInput)
		want     string
		warn     string // substring; "" means no warning
		probe    bool
		remember string
		wantErr  string
	}{
		{name: "tcg asked", mod: func(in *accelInput) { in.requested = "tcg"; in.cpuFlags = vmxFlags }, want: "tcg"},
		{name: "kvm asked and offered", mod: func(in *accelInput) { in.requested = "kvm"; in.cpuFlags = pvmFlags }, want: "kvm"},
		{name: "kvm asked, none", mod: func(in *accelInput) { in.requested = "kvm"; in.kvmOffered = false; in.kvmWhyNot = "no /dev/kvm" },
			wantErr: "offers no KVM (no /dev/kvm)"},
		{name: "unknown", mod: func(in *accelInput) { in.requested = "hvf" }, wantErr: `"hvf" is not known`},
		{name: "auto, none offered", mod: func(in *accelInput) { in.kvmOffered = false; in.kvmWhyNot = "no /dev/kvm" },
			want: "tcg", warn: "KVM is not available (no /dev/kvm)"},
		{name: "auto, paravirtual KVM", mod: func(in *accelInput) { in.requested = "auto"; in.cpuFlags = pvmFlags },
			want: "tcg", warn: "no vmx or svm flag", remember: "tcg"},
		{name: "auto, vmx: boot decides", mod: func(in *accelInput) { in.cpuFlags = vmxFlags }, want: "kvm", probe: true},
		{name: "auto, flags unknown: boot decides", mod: func(in *accelInput) { in.cpuFlags = nil }, want: "kvm", probe: true},
		{name: "auto, paravirtual but always boot", mod: func(in *accelInput) { in.cpuFlags = pvmFlags; in.alwaysBoot = true }, want: "kvm", probe: true},
		{name: "auto, remote with vmx", mod: func(in *accelInput) { in.cpuFlags = vmxFlags; in.remote = true }, want: "kvm", remember: "kvm"},
		{name: "auto, cached tcg", mod: func(in *accelInput) {
			in.cpuFlags = vmxFlags
			in.cached = &verdict{Accel: "tcg", Reason: "a guest gave no banner"}
		}, want: "tcg", warn: "a guest gave no banner"},
		{name: "auto, cached kvm", mod: func(in *accelInput) {
			in.cpuFlags = pvmFlags
			in.cached = &verdict{Accel: "kvm"}
		}, want: "kvm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.mod(&in)
			got, err := decideAccel(in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.accel != tt.want || got.probe != tt.probe {
				t.Fatalf("decision = %+v, want accel %q probe %v", got, tt.want, tt.probe)
			}
			if tt.warn == "" && got.warning != "" || tt.warn != "" && !strings.Contains(got.warning, tt.warn) {
				t.Fatalf("warning = %q, want %q", got.warning, tt.warn)
			}
			if strings.Contains(got.warning, "\n") {
				t.Fatalf("warning spans lines: %q", got.warning)
			}
			if tt.remember == "" && got.remember != nil || tt.remember != "" && (got.remember == nil || got.remember.Accel != tt.remember || !got.remember.Decided.Equal(now)) {
				t.Fatalf("remember = %+v, want %q", got.remember, tt.remember)
			}
		})
	}
}

func TestProbeVerdict(t *testing.T) {
	now := time.Now()
	if v := probeVerdict(true, time.Minute, now); v.Accel != "kvm" {
		t.Errorf("booted: %+v", v)
	}
	v := probeVerdict(false, 90*time.Second, now)
	if v.Accel != "tcg" || !strings.Contains(v.Reason, "1m30s") {
		t.Errorf("not booted: %+v", v)
	}
}

func TestAccelCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c := accelCache{path: filepath.Join(dir, accelFile)}
	if v, err := c.get("h qemu:///system"); err != nil || v != nil {
		t.Fatalf("empty cache: %+v %v", v, err)
	}
	ctx := context.Background()
	when := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := c.put(ctx, accelKey("h", "qemu:///system"), verdict{Accel: "tcg", Reason: "r", Decided: when}); err != nil {
		t.Fatal(err)
	}
	if err := c.put(ctx, accelKey("h", "qemu:///session"), verdict{Accel: "kvm", Decided: when}); err != nil {
		t.Fatal(err)
	}
	v, err := c.get("h qemu:///system")
	if err != nil || v == nil || v.Accel != "tcg" || v.Reason != "r" || !v.Decided.Equal(when) {
		t.Fatalf("get = %+v %v", v, err)
	}
	if v, _ := c.get("h qemu:///session"); v == nil || v.Accel != "kvm" {
		t.Fatalf("second key lost: %+v", v)
	}
	if st, err := os.Stat(c.path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", st, err)
	}
	// A damaged file costs a new probe, not an error.
	if err := os.WriteFile(c.path, []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := c.get("h qemu:///system"); err != nil || v != nil {
		t.Fatalf("damaged cache: %+v %v", v, err)
	}
	// A verdict naming no accelerator is ignored.
	if err := os.WriteFile(c.path, []byte(`{"h qemu:///system":{"accel":"hvf"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.get("h qemu:///system"); v != nil {
		t.Fatalf("bogus verdict taken: %+v", v)
	}
}
