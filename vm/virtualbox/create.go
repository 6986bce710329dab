package virtualbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// Accel is what Created.Accel says: VirtualBox brings its own hardware
// virtualization and has nothing to choose.
const Accel = "virtualbox"

// vmPrefix starts every VM name devbundle gives.
const vmPrefix = "devbundle-"

// vmName is a new, unique VM name for a machine.
func vmName(machine string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return vmPrefix + machine + "-" + hex.EncodeToString(b[:]), nil
}

// ownVMName tells whether name is one vmName gives for machine.
func ownVMName(name, machine string) bool {
	rest, ok := strings.CutPrefix(name, vmPrefix+machine+"-")
	if !ok || len(rest) != 8 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// Create imports the box's box.ovf as a new VM in a folder inside
// spec.Dir, with the box's disks placed there too, then sets CPUs,
// memory, the base MAC, NAT with forwards on 127.0.0.1 (host ports picked
// free), the serial console log and the optional host-only adapter, and
// grows the boot disk when spec.DiskGiB asks for more than the box has.
// It does not start the VM. A failed create leaves nothing registered.
func (p *Provider) Create(ctx context.Context, spec vm.Spec) (vm.Created, error) {
	if err := validateSpec(spec); err != nil {
		return vm.Created{}, err
	}
	out, err := p.v.run(ctx, "import", spec.BoxOVF, "--dry-run")
	if err != nil {
		return vm.Created{}, fmt.Errorf("inspect box %q: %w", spec.BoxOVF, err)
	}
	app, err := parseDryRun(out)
	if err != nil {
		return vm.Created{}, err
	}
	if err := app.check(spec.BoxOVF); err != nil {
		return vm.Created{}, err
	}
	name, err := vmName(spec.Name)
	if err != nil {
		return vm.Created{}, err
	}
	vmDir := filepath.Join(spec.Dir, name)
	created := vm.Created{Accel: Accel, ConsoleLog: spec.ConsoleLog}
	if created.ConsoleLog == "" {
		created.ConsoleLog = filepath.Join(vmDir, "console.log")
	}
	if spec.Accel != "" && spec.Accel != "auto" {
		created.Warnings = append(created.Warnings, fmt.Sprintf("accelerator %q is a libvirt setting; VirtualBox uses its own hardware virtualization", spec.Accel))
	}
	grow := spec.DiskGiB > 0 && int64(spec.DiskGiB)<<30 > app.HardDisks[0].Capacity

	args := []string{"import", spec.BoxOVF}
	if grow {
		// VirtualBox resizes VDI images; VMDK resizing is not something
		// every version does.
		args = append(args, "--options", "importtovdi")
	}
	args = append(args, "--vsys", "0", "--vmname", name, "--basefolder", spec.Dir)
	var bootDisk string
	for i, hd := range app.HardDisks {
		file := filepath.Base(filepath.FromSlash(hd.Source))
		if grow {
			file = strings.TrimSuffix(file, filepath.Ext(file)) + ".vdi"
		}
		target := filepath.Join(vmDir, file)
		if i == 0 {
			bootDisk = target
		}
		args = append(args, "--unit", strconv.Itoa(hd.Unit), "--disk", target)
	}
	ok := false
	defer func() {
		if !ok {
			p.removeLeftover(context.WithoutCancel(ctx), name, vmDir)
		}
	}()
	if _, err := p.v.run(ctx, args...); err != nil {
		return vm.Created{}, fmt.Errorf("import box %q: %w", spec.BoxOVF, err)
	}
	info, err := p.info(ctx, name)
	if err != nil {
		return vm.Created{}, fmt.Errorf("read the imported VM %q: %w", name, err)
	}
	created.ID = info.UUID

	// Picking ports and recording them in the VM happen under one lock,
	// so two creates do not pick the same ports.
	unlock, err := p.lock(ctx, "ports")
	if err != nil {
		return vm.Created{}, err
	}
	defer unlock()
	if created.Forwards, err = p.fillForwards(ctx, spec.Forwards, info.UUID); err != nil {
		return vm.Created{}, err
	}

	// Boxes exported by Vagrant often carry a NAT rule named "ssh"; rules
	// of the box would clash with ours by name or host port.
	if len(info.Forwards) > 0 {
		del := []string{"modifyvm", info.UUID}
		for _, r := range info.Forwards {
			del = append(del, "--natpf1", "delete", r.Name)
		}
		if _, err := p.v.run(ctx, del...); err != nil {
			return vm.Created{}, fmt.Errorf("remove the box's port forwards from VM %q: %w", name, err)
		}
	}
	mod := []string{"modifyvm", info.UUID,
		"--cpus", strconv.Itoa(spec.CPUs),
		"--memory", strconv.Itoa(spec.MemoryMiB),
		"--nic1", "nat",
	}
	if spec.BaseMAC != "" {
		mac, err := normalizeMAC(spec.BaseMAC)
		if err != nil {
			return vm.Created{}, err
		}
		mod = append(mod, "--macaddress1", mac)
	}
	for _, f := range created.Forwards {
		mod = append(mod, "--natpf1", ruleFor(f).String())
	}
	mod = append(mod, "--uart1", "0x3F8", "4", "--uartmode1", "file", created.ConsoleLog)
	switch {
	case p.opts.HostOnly.Adapter != "":
		mod = append(mod, "--nic2", "hostonly", "--hostonlyadapter2", p.opts.HostOnly.Adapter)
	case p.opts.HostOnly.Network != "":
		mod = append(mod, "--nic2", "hostonlynet", "--host-only-net2", p.opts.HostOnly.Network)
	}
	if _, err := p.v.run(ctx, mod...); err != nil {
		return vm.Created{}, fmt.Errorf("configure VM %q: %w", name, err)
	}
	if grow {
		mib := strconv.Itoa(spec.DiskGiB * 1024)
		if _, err := p.v.run(ctx, "modifymedium", "disk", bootDisk, "--resize", mib); err != nil {
			return vm.Created{}, fmt.Errorf("grow the disk of VM %q to %d GiB: %w", name, spec.DiskGiB, err)
		}
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
	if spec.BoxOVF == "" {
		errs = append(errs, errors.New("the box has no box.ovf: it is not a VirtualBox box; add the box's virtualbox build (devbundle box add NAME --provider virtualbox)"))
	} else if _, err := os.Stat(spec.BoxOVF); err != nil {
		errs = append(errs, fmt.Errorf("box file %q: %w; remove the box and add it again", spec.BoxOVF, err))
	}
	if spec.Dir == "" {
		errs = append(errs, errors.New("no machine folder given (Spec.Dir)"))
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
	if spec.BaseMAC != "" {
		if _, err := normalizeMAC(spec.BaseMAC); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var macDigits = regexp.MustCompile(`^[0-9A-F]{12}$`)

// normalizeMAC turns "08:00:27:d1:4c:66", "08-00-27-D1-4C-66" or
// "080027D14C66" into the 12 hex digits modifyvm's --macaddress1 takes.
// A multicast address (lowest bit of the first byte set) is refused, as
// no network card may have one.
func normalizeMAC(s string) (string, error) {
	mac := strings.ToUpper(strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(s)))
	if !macDigits.MatchString(mac) {
		return "", fmt.Errorf("base MAC %q of the box is not a MAC address (12 hex digits); fix config.vm.base_mac in the box's Vagrantfile", s)
	}
	first, _ := strconv.ParseUint(mac[:2], 16, 8)
	if first&1 == 1 {
		return "", fmt.Errorf("base MAC %q of the box is a multicast address; fix config.vm.base_mac in the box's Vagrantfile", s)
	}
	return mac, nil
}

// ruleFor is the NAT rule of a forward: TCP from HostIP:HostPort to the
// guest port, the guest address left to VirtualBox's DHCP lease.
func ruleFor(f vm.Forward) natRule {
	return natRule{Name: f.Name, Proto: "tcp", HostIP: f.HostIP, HostPort: f.HostPort, GuestPort: f.GuestPort}
}

// removeLeftover unregisters and deletes a VM a failed create made, and
// its folder.
func (p *Provider) removeLeftover(ctx context.Context, name, dir string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := p.v.run(ctx, "unregistervm", name, "--delete"); err != nil && !errors.Is(err, vm.ErrNotFound) {
		return // keep the folder: its files are still registered
	}
	_ = os.RemoveAll(dir)
}
