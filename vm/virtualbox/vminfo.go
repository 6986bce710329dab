package virtualbox

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/devbundle/devbundle/vm"
)

// vmInfo is what the provider reads from `showvminfo --machinereadable`.
type vmInfo struct {
	Name     string
	UUID     string
	CfgFile  string
	State    string // VMState: "poweroff", "running", ...
	Forwards []natRule
	Raw      map[string]string
}

// natRule is one NAT port-forwarding rule of network adapter 1.
type natRule struct {
	Name      string
	Proto     string
	HostIP    string
	HostPort  int
	GuestIP   string
	GuestPort int
}

// String is the rule as modifyvm's --natpf1 takes it and showvminfo's
// Forwarding(n) prints it: name,proto,hostip,hostport,guestip,guestport.
func (r natRule) String() string {
	return fmt.Sprintf("%s,%s,%s,%d,%s,%d", r.Name, r.Proto, r.HostIP, r.HostPort, r.GuestIP, r.GuestPort)
}

// parseNATRule reads "name,proto,hostip,hostport,guestip,guestport".
func parseNATRule(s string) (natRule, error) {
	f := strings.Split(s, ",")
	if len(f) != 6 {
		return natRule{}, fmt.Errorf("NAT rule %q does not have 6 fields", s)
	}
	hp, err1 := strconv.Atoi(f[3])
	gp, err2 := strconv.Atoi(f[5])
	if err1 != nil || err2 != nil {
		return natRule{}, fmt.Errorf("NAT rule %q has a port that is not a number", s)
	}
	return natRule{Name: f[0], Proto: f[1], HostIP: f[2], HostPort: hp, GuestIP: f[4], GuestPort: gp}, nil
}

var forwardingKey = regexp.MustCompile(`^Forwarding\((\d+)\)$`)

// parseMachineReadable reads the key=value lines of `showvminfo
// --machinereadable`. Values are quoted strings (with \" \\ \n \r
// escapes, which VirtualBox 6.1 and later use for special characters) or
// bare numbers; keys may be quoted too ("SATA Controller-0-0"). Lines it
// does not understand are skipped.
func parseMachineReadable(out string) (vmInfo, error) {
	raw := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		key, rest, ok := readToken(line, '=')
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		val, _, ok := readToken(rest[1:], 0)
		if !ok {
			continue
		}
		raw[key] = val
	}
	info := vmInfo{Name: raw["name"], UUID: raw["UUID"], CfgFile: raw["CfgFile"], State: raw["VMState"], Raw: raw}
	if info.UUID == "" || info.State == "" {
		return vmInfo{}, fmt.Errorf("showvminfo printed no UUID or VMState: %q", firstLines(out, 3))
	}
	// Forwarding(n) lines belong to the NAT adapter printed before them;
	// devbundle only uses adapter 1, and VirtualBox numbers them from 0.
	type indexed struct {
		i int
		r natRule
	}
	var rules []indexed
	for k, v := range raw {
		m := forwardingKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		r, err := parseNATRule(v)
		if err != nil {
			return vmInfo{}, fmt.Errorf("showvminfo of %q: %w", info.Name, err)
		}
		i, _ := strconv.Atoi(m[1])
		rules = append(rules, indexed{i, r})
	}
	slices.SortFunc(rules, func(a, b indexed) int { return a.i - b.i })
	for _, r := range rules {
		info.Forwards = append(info.Forwards, r.r)
	}
	return info, nil
}

// readToken reads a quoted or bare token from the start of s. A bare token
// ends at stop (or the end of s); the rest of s is returned.
func readToken(s string, stop byte) (tok, rest string, ok bool) {
	if s == "" {
		return "", "", stop == 0
	}
	if s[0] != '"' {
		if stop == 0 {
			return s, "", true
		}
		i := strings.IndexByte(s, stop)
		if i < 0 {
			return "", "", false
		}
		return s[:i], s[i:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default: // \" and \\, and anything else taken literally
				b.WriteByte(s[i])
			}
		case c == '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// mapState turns VirtualBox's VMState into devbundle's words.
func mapState(s string) vm.State {
	switch s {
	case "running", "starting", "stopping", "restoring", "saving", "teleporting",
		"livesnapshotting", "onlinesnapshotting", "teleportingin":
		// Busy but on: a halt must still power it off.
		return vm.StateRunning
	case "paused", "teleportingpausedvm":
		return vm.StatePaused
	case "poweroff", "aborted", "saved", "aborted-saved", "teleported":
		return vm.StateHalted
	default: // gurumeditation, stuck, settingup, deletingsnapshot...
		return vm.StateUnknown
	}
}

// vmListEntry is one line of `list vms`: "name" {uuid}.
type vmListEntry struct {
	Name string
	UUID string
}

var listLine = regexp.MustCompile(`^"(.*)" \{([0-9a-fA-F-]+)\}$`)

// parseListVMs reads `VBoxManage list vms`.
func parseListVMs(out string) []vmListEntry {
	var vms []vmListEntry
	for _, line := range strings.Split(out, "\n") {
		m := listLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m != nil {
			vms = append(vms, vmListEntry{Name: m[1], UUID: m[2]})
		}
	}
	return vms
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
