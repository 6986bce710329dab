package fakevbox

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// opts walks an argument list the way VBoxManage's option parser does:
// "--name value" and "--name=value" alike.
type opts struct {
	args []string
	i    int
}

// next returns the next option name and whether there is one.
func (o *opts) next() (string, bool) {
	if o.i >= len(o.args) {
		return "", false
	}
	a := o.args[o.i]
	o.i++
	if name, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") {
		// Push the value back as the next argument.
		o.args = slices.Insert(slices.Clone(o.args), o.i, val)
		return name, true
	}
	return a, true
}

// value takes the option's value.
func (o *opts) value() (string, bool) {
	if o.i >= len(o.args) {
		return "", false
	}
	v := o.args[o.i]
	o.i++
	return v, true
}

func (f *fake) dispatch(args []string) error {
	if len(args) == 0 {
		return f.unknown(args, "no command")
	}
	switch args[0] {
	case "--version":
		if len(args) != 1 {
			return f.unknown(args, "--version takes no arguments")
		}
		return f.out(f.stdout, "version.tmpl", f.knobs)
	case "list":
		if len(args) != 2 || args[1] != "vms" {
			return f.unknown(args, "the fake lists vms only")
		}
		return f.out(f.stdout, "list-vms.tmpl", f.st.VMs)
	case "showvminfo":
		return f.showvminfo(args)
	case "import":
		return f.importCmd(args)
	case "modifyvm":
		return f.modifyvm(args)
	case "modifymedium":
		return f.modifymedium(args)
	case "startvm":
		return f.startvm(args)
	case "controlvm":
		return f.controlvm(args)
	case "unregistervm":
		return f.unregistervm(args)
	}
	return f.unknown(args, fmt.Sprintf("Invalid command '%s'", args[0]))
}

func (f *fake) showvminfo(args []string) error {
	if len(args) != 3 || args[2] != "--machinereadable" {
		return f.unknown(args, "the fake answers showvminfo <vm> --machinereadable only")
	}
	m, err := f.find(args[1])
	if err != nil {
		return err
	}
	dir := filepath.Dir(m.CfgFile)
	data := struct {
		*Machine
		OSDesc, SnapFldr, LogFldr, StateChange string
	}{m, osDescription(m.OSType), filepath.Join(dir, "Snapshots"), filepath.Join(dir, "Logs"),
		m.StateChange.UTC().Format("2006-01-02T15:04:05.000000000")}
	return f.out(f.stdout, "showvminfo.tmpl", data)
}

// osDescription is the guest OS type's description, as showvminfo's
// ostype prints it.
func osDescription(id string) string {
	switch id {
	case "Debian_64":
		return "Debian (64-bit)"
	case "Debian":
		return "Debian (32-bit)"
	case "RedHat_64":
		return "Red Hat (64-bit)"
	case "Fedora_64":
		return "Fedora (64-bit)"
	case "Ubuntu_64":
		return "Ubuntu (64-bit)"
	}
	return id
}

func (f *fake) importCmd(args []string) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return f.unknown(args, "import needs an OVF file first")
	}
	ovf := args[1]
	o := &opts{args: args[2:]}
	dryRun, toVDI := false, false
	vsys := -1
	var vmname, basefolder string
	diskFor := map[int]string{}
	for {
		name, ok := o.next()
		if !ok {
			break
		}
		switch name {
		case "--dry-run", "-n":
			dryRun = true
		case "--options":
			v, ok := o.value()
			if !ok || v != "importtovdi" {
				return f.unknown(args, "the fake knows --options importtovdi only")
			}
			toVDI = true
		case "--vsys":
			v, ok := o.value()
			if !ok || v != "0" {
				return f.unknown(args, "the fake imports --vsys 0 only")
			}
			vsys = 0
		case "--vmname", "--basefolder":
			v, ok := o.value()
			if !ok || vsys != 0 {
				return f.unknown(args, name+" needs --vsys 0 before it and a value")
			}
			if name == "--vmname" {
				vmname = v
			} else {
				basefolder = v
			}
		case "--unit":
			v, ok := o.value()
			unit, err := strconv.Atoi(v)
			if !ok || err != nil || vsys != 0 {
				return f.unknown(args, "--unit needs --vsys 0 before it and a number")
			}
			next, ok := o.next()
			if !ok || next != "--disk" {
				return f.unknown(args, "the fake knows --unit N --disk PATH only")
			}
			if diskFor[unit], ok = o.value(); !ok {
				return f.unknown(args, "--disk needs a path")
			}
		default:
			return f.unknown(args, "Unknown option: "+name)
		}
	}
	base := filepath.Join(f.dir, "VirtualBox VMs")
	if basefolder != "" {
		base = basefolder
	}
	app, err := readAppliance(ovf, base)
	if err != nil {
		return f.fail("appliance-read", ovf)
	}
	if len(app.Systems) == 0 {
		return f.fail("appliance-read", ovf)
	}
	sys := &app.Systems[0]
	var name string
	for i := range sys.Items {
		if sys.Items[i].Kind == "name" {
			if vmname != "" {
				sys.Items[i].Value = vmname
			}
			name = sys.Items[i].Value
		}
	}
	for i := range sys.Items {
		it := &sys.Items[i]
		switch it.Kind {
		case "settingsfile":
			it.Value = filepath.Join(base, name, name+".vbox")
		case "harddisk":
			it.Target = filepath.Join(base, name, it.Value)
			if p, ok := diskFor[it.Unit]; ok {
				it.Target = p
				delete(diskFor, it.Unit)
			}
		}
	}
	for unit := range diskFor {
		return f.fail("bad-unit", unit)
	}
	if err := f.tmpl.ExecuteTemplate(f.stderr, "interpreting", ovf); err != nil {
		return err
	}
	if err := f.tmpl.ExecuteTemplate(f.stdout, "listing", app); err != nil {
		return err
	}
	if dryRun {
		return nil
	}
	return f.importVM(ovf, app, name, base, toVDI)
}

// importVM registers the VM an import makes: its folder, settings file and
// disks (copies of the box's images), new MAC addresses, the NAT rules of
// the box's vbox:Machine section.
func (f *fake) importVM(ovf string, app appliance, name, base string, toVDI bool) error {
	sys := app.Systems[0]
	m := &Machine{UUID: newUUID(), Name: name, State: "poweroff", StateChange: f.now, CPUs: 1, MemoryMB: 512,
		UART: UART{Mode: "disconnected"}}
	for _, it := range sys.Items {
		switch it.Kind {
		case "ostype":
			m.OSType = it.Value
		case "settingsfile":
			m.CfgFile = it.Value
		case "cpus":
			m.CPUs, _ = strconv.Atoi(it.Value)
		case "memory":
			m.MemoryMB, _ = strconv.Atoi(it.Value)
		case "nic":
			if it.Slot < len(m.NICs) {
				m.NICs[it.Slot] = NIC{Type: "nat", MAC: newMAC()}
			}
		}
	}
	for i := range m.NICs {
		if m.NICs[i].Type == "" {
			m.NICs[i].Type = "none"
		}
	}
	if m.NICs[0].Type == "nat" {
		m.NICs[0].Rules = sys.Rules
	}
	if _, err := os.Stat(m.CfgFile); err == nil {
		return f.fail("settings-exists", m.CfgFile)
	}
	for _, it := range sys.Items {
		if it.Kind != "harddisk" {
			continue
		}
		format := "VMDK"
		if toVDI {
			format = "VDI"
			if !strings.EqualFold(filepath.Ext(it.Target), ".vdi") {
				// Not sure what VirtualBox does with a .vmdk name for a
				// VDI image: refuse rather than guess.
				return f.unknown([]string{"import", ovf, "--options", "importtovdi", "--disk", it.Target}, "the fake wants .vdi targets with importtovdi")
			}
		}
		if _, err := os.Stat(it.Target); err == nil {
			return f.fail("disk-exists", it.Target)
		}
		src := filepath.Join(filepath.Dir(ovf), it.Value)
		data, err := os.ReadFile(src)
		if err != nil {
			return f.fail("appliance-read", src)
		}
		if err := os.MkdirAll(filepath.Dir(it.Target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(it.Target, data, 0o644); err != nil {
			return err
		}
		var capacity int64 = -1
		for _, d := range app.Disks {
			if d.Href == it.Value {
				capacity = d.Capacity
			}
		}
		m.Disks = append(m.Disks, Disk{Path: it.Target, UUID: newUUID(), Format: format, CapacityMB: capacity >> 20})
	}
	if err := os.MkdirAll(filepath.Join(filepath.Dir(m.CfgFile), "Logs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(m.CfgFile, []byte("<?xml version=\"1.0\"?>\n<!-- fake VirtualBox settings of "+m.Name+" -->\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(m.CfgFile), "Logs", "VBox.log"), []byte("fake log\n"), 0o644); err != nil {
		return err
	}
	f.st.VMs = append(f.st.VMs, m)
	if err := f.progress(); err != nil {
		return err
	}
	return f.out(f.stdout, "imported", nil)
}

var (
	nicOpt     = regexp.MustCompile(`^--(nic|macaddress|natpf|hostonlyadapter|host-only-net|uart|uartmode)([1-8])$`)
	macPattern = regexp.MustCompile(`^[0-9A-Fa-f]{12}$`)
)

// modifyvm changes settings of a VM that is not running, all or nothing:
// VBoxManage saves the settings only when every option succeeded.
func (f *fake) modifyvm(args []string) error {
	if len(args) < 3 {
		return f.unknown(args, "modifyvm needs a VM and options")
	}
	orig, err := f.find(args[1])
	if err != nil {
		return err
	}
	if err := f.takeLock(orig, true); err != nil {
		return err
	}
	m := cloneMachine(orig)
	o := &opts{args: args[2:]}
	for {
		name, ok := o.next()
		if !ok {
			break
		}
		switch name {
		case "--cpus", "--memory":
			v, ok := o.value()
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				return f.unknown(args, name+" needs a number")
			}
			if name == "--cpus" {
				if n < 1 || n > 64 {
					return f.fail("bad-value", fmt.Sprintf("CPU count %d", n))
				}
				m.CPUs = n
			} else {
				if n < 4 {
					return f.fail("bad-value", fmt.Sprintf("RAM size %d MB", n))
				}
				m.MemoryMB = n
			}
			continue
		}
		mm := nicOpt.FindStringSubmatch(name)
		if mm == nil {
			return f.unknown(args, "Unknown option: "+name)
		}
		idx, _ := strconv.Atoi(mm[2])
		nic := &m.NICs[idx-1]
		v, ok := o.value()
		if !ok {
			return f.unknown(args, name+" needs a value")
		}
		switch mm[1] {
		case "nic":
			switch v {
			case "none", "nat", "hostonly":
			case "hostonlynet":
			default:
				return f.unknown(args, "the fake knows --nicN none|nat|hostonly|hostonlynet only")
			}
			if nic.Type != v && v != "nat" {
				nic.Rules = nil
			}
			nic.Type = v
			if nic.MAC == "" {
				nic.MAC = newMAC()
			}
		case "macaddress":
			if v == "auto" {
				nic.MAC = newMAC()
				break
			}
			first, _ := strconv.ParseUint(v[:min(2, len(v))], 16, 8)
			if !macPattern.MatchString(v) || first&1 == 1 {
				return f.fail("bad-mac", nil)
			}
			nic.MAC = strings.ToUpper(v)
		case "hostonlyadapter":
			nic.HostOnlyAdapter = v
		case "host-only-net":
			nic.HostOnlyNet = v
		case "natpf":
			if err := f.natpf(nic, o, v, args); err != nil {
				return err
			}
		case "uart":
			if idx != 1 {
				return f.unknown(args, "the fake has uart1 only")
			}
			if v == "off" {
				m.UART.Enabled = false
				break
			}
			irq, ok := o.value()
			n, err := strconv.Atoi(irq)
			if !ok || err != nil || !strings.HasPrefix(strings.ToLower(v), "0x") {
				return f.unknown(args, "--uart1 takes off or <I/O base> <IRQ>")
			}
			m.UART.Enabled, m.UART.IOBase, m.UART.IRQ = true, v, n
		case "uartmode":
			if idx != 1 {
				return f.unknown(args, "the fake has uart1 only")
			}
			switch v {
			case "disconnected":
				m.UART.Mode, m.UART.Path = v, ""
			case "file":
				p, ok := o.value()
				if !ok || !filepath.IsAbs(p) {
					return f.unknown(args, "--uartmode1 file needs an absolute path")
				}
				m.UART.Mode, m.UART.Path = v, p
			default:
				return f.unknown(args, "the fake knows --uartmode1 disconnected|file only")
			}
		}
	}
	*orig = *m
	return nil
}

// natpf adds ("name,proto,hostip,hostport,guestip,guestport") or deletes
// ("delete name") a NAT rule.
func (f *fake) natpf(nic *NIC, o *opts, v string, args []string) error {
	if v == "delete" {
		name, ok := o.value()
		if !ok {
			return f.unknown(args, "--natpfN delete needs a rule name")
		}
		for i, r := range nic.Rules {
			if r.Name == name {
				nic.Rules = slices.Delete(nic.Rules, i, i+1)
				return nil
			}
		}
		return f.fail("natrule-missing", nil)
	}
	fs := strings.Split(v, ",")
	if len(fs) != 6 {
		return f.fail("natrule-invalid", v)
	}
	hp, err1 := strconv.Atoi(fs[3])
	gp, err2 := strconv.Atoi(fs[5])
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || gp < 1 || gp > 65535 || (fs[1] != "tcp" && fs[1] != "udp") || fs[0] == "" {
		return f.fail("natrule-invalid", v)
	}
	r := natRule{Name: fs[0], Proto: fs[1], HostIP: fs[2], HostPort: hp, GuestIP: fs[4], GuestPort: gp}
	for _, x := range nic.Rules {
		if x.Name == r.Name {
			return f.fail("natrule-exists", nil)
		}
		if x.HostPort == r.HostPort && x.HostIP == r.HostIP && x.Proto == r.Proto {
			return f.fail("natrule-port-taken", nil)
		}
	}
	nic.Rules = append(nic.Rules, r)
	return nil
}

func cloneMachine(m *Machine) *Machine {
	c := *m
	for i := range c.NICs {
		c.NICs[i].Rules = slices.Clone(m.NICs[i].Rules)
	}
	c.Disks = slices.Clone(m.Disks)
	return &c
}

func (f *fake) modifymedium(args []string) error {
	if len(args) != 5 || args[1] != "disk" || args[3] != "--resize" {
		return f.unknown(args, "the fake knows modifymedium disk <path> --resize <MB> only")
	}
	mb, err := strconv.ParseInt(args[4], 10, 64)
	if err != nil {
		return f.unknown(args, "--resize needs a number of MB")
	}
	for _, m := range f.st.VMs {
		for i := range m.Disks {
			d := &m.Disks[i]
			if d.Path != args[2] && d.UUID != args[2] {
				continue
			}
			if m.State == "running" || m.State == "paused" {
				return f.fail("medium-locked", d.Path)
			}
			if d.Format != "VDI" {
				return f.fail("resize-unsupported", nil)
			}
			if mb < d.CapacityMB {
				return f.fail("resize-shrink", d.Path)
			}
			d.CapacityMB = mb
			return f.progress()
		}
	}
	return f.fail("medium-missing", args[2])
}

func (f *fake) startvm(args []string) error {
	if len(args) != 4 || args[2] != "--type" {
		return f.unknown(args, "the fake knows startvm <vm> --type <type> only")
	}
	switch args[3] {
	case "headless", "gui", "sdl", "separate":
	default:
		return f.fail("bad-value", "session type '"+args[3]+"'")
	}
	m, err := f.find(args[1])
	if err != nil {
		return err
	}
	if m.State == "running" || m.State == "paused" {
		return f.fail("already-running", m.Name)
	}
	if err := f.takeLock(m, false); err != nil {
		return err
	}
	for _, d := range m.Disks {
		if _, err := os.Stat(d.Path); err != nil {
			return f.fail("medium-missing", d.Path)
		}
	}
	if m.UART.Enabled && m.UART.Mode == "file" {
		// The VM process creates the log file; a folder it cannot
		// write fails the start.
		if err := os.WriteFile(m.UART.Path, []byte("fake serial console of "+m.Name+"\n"), 0o644); err != nil {
			return fmt.Errorf("failed to open serial log %q: %w", m.UART.Path, err)
		}
	}
	m.State, m.StateChange = "running", f.now
	return f.out(f.stdout, "startvm.tmpl", m)
}

func (f *fake) controlvm(args []string) error {
	if len(args) >= 4 && args[2] == "natpf1" {
		return f.controlNATPF(args)
	}
	if len(args) != 3 {
		return f.unknown(args, "the fake knows controlvm <vm> acpipowerbutton|poweroff|resume only")
	}
	switch args[2] {
	case "acpipowerbutton", "poweroff", "resume":
	default:
		return f.unknown(args, "the fake knows controlvm acpipowerbutton|poweroff|resume only")
	}
	m, err := f.find(args[1])
	if err != nil {
		return err
	}
	switch args[2] {
	case "acpipowerbutton":
		if m.State != "running" && m.State != "paused" {
			return f.fail("not-running", m.Name)
		}
		if !f.knobs.IgnoreACPI && m.ACPIAt == nil {
			t := f.now
			m.ACPIAt = &t
		}
		return nil
	case "poweroff":
		if m.State != "running" && m.State != "paused" {
			return f.fail("not-running", m.Name)
		}
		f.powerOff(m)
		return f.progress()
	case "resume":
		if m.State != "running" && m.State != "paused" {
			return f.fail("not-running", m.Name)
		}
		if m.State != "paused" {
			return f.fail("not-paused", strings.ToUpper(m.State[:1])+m.State[1:])
		}
		m.State, m.StateChange = "running", f.now
		return nil
	}
	return f.unknown(args, "the fake knows controlvm acpipowerbutton|poweroff|resume only")
}

// controlNATPF changes the NAT rules of a running VM's first adapter:
// "controlvm <vm> natpf1 <rule>" or "controlvm <vm> natpf1 delete <name>"
// (VirtualBox User Manual, chapter 8, VBoxManage controlvm: natpf<1-N>).
// Like the real tool it needs the VM running, with a NAT adapter 1.
func (f *fake) controlNATPF(args []string) error {
	var v string
	var o *opts
	switch {
	case len(args) == 4 && args[3] != "delete":
		v = args[3]
	case len(args) == 5 && args[3] == "delete":
		v, o = "delete", &opts{args: args[4:]}
	default:
		return f.unknown(args, "the fake knows controlvm <vm> natpf1 <rule> and controlvm <vm> natpf1 delete <name> only")
	}
	m, err := f.find(args[1])
	if err != nil {
		return err
	}
	if m.State != "running" && m.State != "paused" {
		return f.fail("not-running", m.Name)
	}
	if len(m.NICs) == 0 || m.NICs[0].Type != "nat" {
		return f.unknown(args, "adapter 1 of the VM is not attached to NAT")
	}
	return f.natpf(&m.NICs[0], o, v, args)
}

// unregistervm --delete removes the VM's settings, disks and logs, and
// its folder when nothing else is left in it.
func (f *fake) unregistervm(args []string) error {
	if len(args) != 3 || args[2] != "--delete" {
		return f.unknown(args, "the fake knows unregistervm <vm> --delete only")
	}
	m, err := f.find(args[1])
	if err != nil {
		return err
	}
	if m.State == "running" || m.State == "paused" {
		return f.fail("unregister-locked", m.Name)
	}
	if err := f.takeLock(m, false); err != nil {
		return err
	}
	dir := filepath.Dir(m.CfgFile)
	for _, d := range m.Disks {
		_ = os.Remove(d.Path)
	}
	_ = os.Remove(m.CfgFile)
	_ = os.Remove(m.CfgFile + "-prev")
	_ = os.RemoveAll(filepath.Join(dir, "Logs"))
	_ = os.Remove(dir) // only when empty
	f.st.VMs = slices.DeleteFunc(f.st.VMs, func(x *Machine) bool { return x == m })
	return f.progress()
}
