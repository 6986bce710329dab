// Package fakevbox is a fake VBoxManage for the VirtualBox provider's
// tests. It keeps its VMs in a folder (state.json), answers each
// subcommand and flag the provider uses with the output formats of
// VirtualBox 7's VBoxManage (the templates in testdata/, each naming the
// manual section it follows), and refuses what the real tool refuses:
// unknown VMs, starting a running VM, changing or unregistering a VM that
// runs or whose session is still being unlocked, NAT rule clashes. An
// invocation it does not recognise exits 2 with an "error:" line and is
// appended to unknown.log, which tests check.
//
// It boots nothing: a "running" VM is a word in state.json. The guest's
// answer to the ACPI power button is modelled by a delay (Knobs).
package fakevbox

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/filelock"
)

//go:embed testdata/*.tmpl
var fixtures embed.FS

// Files in the state folder.
const (
	StateFile   = "state.json"
	KnobsFile   = "knobs.json"
	CallsFile   = "calls.log"
	UnknownFile = "unknown.log"
)

// Knobs tune the fake's behaviour; tests write them to knobs.json.
type Knobs struct {
	// Version is what --version prints (default "7.0.14r161095").
	Version string `json:"version,omitempty"`
	// ACPIDelayMS is how long the guest takes to power off after the
	// ACPI power button (default 300 ms).
	ACPIDelayMS int `json:"acpi_delay_ms,omitempty"`
	// IgnoreACPI makes the guest ignore the power button.
	IgnoreACPI bool `json:"ignore_acpi,omitempty"`
	// UnlockCalls is how many commands that lock a VM's session fail with
	// "already locked for a session" right after it powers off, as the
	// real VirtualBox does while the VM process exits.
	UnlockCalls int `json:"unlock_calls,omitempty"`
}

// State is everything the fake keeps.
type State struct {
	VMs []*Machine `json:"vms"`
}

// Machine is one registered VM.
type Machine struct {
	UUID        string    `json:"uuid"`
	Name        string    `json:"name"`
	OSType      string    `json:"os_type"`
	CfgFile     string    `json:"cfg_file"`
	State       string    `json:"state"`
	StateChange time.Time `json:"state_change"`
	CPUs        int       `json:"cpus"`
	MemoryMB    int       `json:"memory_mb"`
	NICs        [8]NIC    `json:"nics"`
	UART        UART      `json:"uart"`
	Disks       []Disk    `json:"disks"`
	// ACPIAt is when the power button was pressed, if the guest is
	// shutting down.
	ACPIAt *time.Time `json:"acpi_at,omitempty"`
	// Locked counts commands still refused while the session unlocks.
	Locked int `json:"locked,omitempty"`
}

// NIC is one network adapter.
type NIC struct {
	Type            string    `json:"type"` // none, nat, hostonly, hostonlynet
	MAC             string    `json:"mac"`
	HostOnlyAdapter string    `json:"host_only_adapter,omitempty"`
	HostOnlyNet     string    `json:"host_only_net,omitempty"`
	Rules           []natRule `json:"rules,omitempty"`
}

// UART is serial port 1.
type UART struct {
	Enabled bool   `json:"enabled"`
	IOBase  string `json:"io_base"`
	IRQ     int    `json:"irq"`
	Mode    string `json:"mode"` // disconnected, file
	Path    string `json:"path"`
}

// Port is uart1's machine-readable value: "0x03f8,4".
func (u UART) Port() string {
	base, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(u.IOBase), "0x"), 16, 16)
	return fmt.Sprintf("0x%04x,%d", base, u.IRQ)
}

// ModeValue is uartmode1's machine-readable value.
func (u UART) ModeValue() string {
	if u.Mode == "file" {
		return "file," + u.Path
	}
	return u.Mode
}

// Disk is one attached hard disk.
type Disk struct {
	Path       string `json:"path"`
	UUID       string `json:"uuid"`
	Format     string `json:"format"` // VMDK or VDI
	CapacityMB int64  `json:"capacity_mb"`
}

type natRule struct {
	Name      string `json:"name"`
	Proto     string `json:"proto"`
	HostIP    string `json:"host_ip"`
	HostPort  int    `json:"host_port"`
	GuestIP   string `json:"guest_ip"`
	GuestPort int    `json:"guest_port"`
}

func (r natRule) String() string {
	return fmt.Sprintf("%s,%s,%s,%d,%s,%d", r.Name, r.Proto, r.HostIP, r.HostPort, r.GuestIP, r.GuestPort)
}

// Load reads the fake's state from dir (for tests).
func Load(dir string) (State, error) {
	var s State
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}

// WriteKnobs writes knobs for the fake running on dir.
func WriteKnobs(dir string, k Knobs) error {
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, KnobsFile), data, 0o644)
}

// fake is one invocation.
type fake struct {
	dir    string
	stdout io.Writer
	stderr io.Writer
	knobs  Knobs
	st     State
	tmpl   *template.Template
	now    time.Time
}

// exitError ends an invocation with an exit status after its message.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

// Main runs one VBoxManage invocation against the state in dir and
// returns its exit status.
func Main(args []string, stdout, stderr io.Writer, dir string) int {
	f := &fake{dir: dir, stdout: stdout, stderr: stderr, now: time.Now()}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake state folder: %v\n", err)
		return 1
	}
	unlock, err := filelock.Lock(context.Background(), filepath.Join(dir, "lock"))
	if err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake lock: %v\n", err)
		return 1
	}
	defer func() { _ = unlock() }()
	f.log(CallsFile, args)
	if err := f.load(); err != nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake state: %v\n", err)
		return 1
	}
	f.advance()
	err = f.dispatch(args)
	if serr := f.save(); serr != nil && err == nil {
		fmt.Fprintf(stderr, "VBoxManage: error: fake state: %v\n", serr)
		return 1
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "VBoxManage: error: %v\n", err)
		return 1
	}
}

func (f *fake) log(file string, args []string) {
	line, _ := json.Marshal(args)
	fh, err := os.OpenFile(filepath.Join(f.dir, file), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer fh.Close()
	_, _ = fh.Write(append(line, '\n'))
}

func (f *fake) load() error {
	var err error
	if f.tmpl, err = template.New("").Funcs(template.FuncMap{
		"q":   quote,
		"inc": func(i int) int { return i + 1 },
	}).ParseFS(fixtures, "testdata/*.tmpl"); err != nil {
		return err
	}
	if data, err := os.ReadFile(filepath.Join(f.dir, KnobsFile)); err == nil {
		if err := json.Unmarshal(data, &f.knobs); err != nil {
			return err
		}
	}
	if f.knobs.Version == "" {
		f.knobs.Version = "7.0.14r161095"
	}
	if f.knobs.ACPIDelayMS == 0 {
		f.knobs.ACPIDelayMS = 300
	}
	f.st, err = Load(f.dir)
	return err
}

func (f *fake) save() error {
	data, err := json.MarshalIndent(f.st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(f.dir, StateFile), data, 0o644)
}

// advance lets guests that were asked to power off do so.
func (f *fake) advance() {
	for _, m := range f.st.VMs {
		if m.ACPIAt != nil && m.State == "running" && f.now.Sub(*m.ACPIAt) >= time.Duration(f.knobs.ACPIDelayMS)*time.Millisecond {
			f.powerOff(m)
		}
	}
}

func (f *fake) powerOff(m *Machine) {
	m.State, m.StateChange, m.ACPIAt = "poweroff", f.now, nil
	m.Locked = f.knobs.UnlockCalls
}

// quote writes a machine-readable string value as VirtualBox 6.1+ does.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// out renders a template to stdout; errOut renders one to stderr and
// returns the exit status 1.
func (f *fake) out(w io.Writer, name string, data any) error {
	return f.tmpl.ExecuteTemplate(w, name, data)
}

func (f *fake) fail(name string, data any) error {
	if err := f.tmpl.ExecuteTemplate(f.stderr, name, data); err != nil {
		return err
	}
	return exitError{1}
}

// unknown records an invocation the fake does not implement and fails it
// as a syntax error.
func (f *fake) unknown(args []string, why string) error {
	f.log(UnknownFile, args)
	_ = f.tmpl.ExecuteTemplate(f.stderr, "syntax", why)
	return exitError{2}
}

// find looks a VM up by UUID or name, as VBoxManage does.
func (f *fake) find(ref string) (*Machine, error) {
	for _, m := range f.st.VMs {
		if m.UUID == ref || strings.Trim(ref, "{}") == m.UUID || m.Name == ref {
			return m, nil
		}
	}
	if isUUID(strings.Trim(ref, "{}")) {
		return nil, f.fail("notfound-uuid", strings.Trim(ref, "{}"))
	}
	return nil, f.fail("notfound-name", ref)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "080027" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// takeLock models a command that locks the VM's session: refused while
// the VM runs (for settings) or its session is still being unlocked.
func (f *fake) takeLock(m *Machine, refuseRunning bool) error {
	if m.Locked > 0 {
		m.Locked--
		return f.fail("locked-session", m.Name)
	}
	if refuseRunning && (m.State == "running" || m.State == "paused") {
		return f.fail("locked-session", m.Name)
	}
	return nil
}

// progress prints the progress line on stderr.
func (f *fake) progress() error { return f.out(f.stderr, "progress.tmpl", nil) }

var joinPath = filepath.Join
