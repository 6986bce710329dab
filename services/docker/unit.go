package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/devbundle/devbundle/services"
)

// Paths in the guest.
const (
	GuestCertDir   = "/etc/docker/devbundle"
	GuestCA        = GuestCertDir + "/ca.pem"
	GuestCert      = GuestCertDir + "/server-cert.pem"
	GuestKey       = GuestCertDir + "/server-key.pem"
	DropInDir      = "/etc/systemd/system/docker.service.d"
	DropInPath     = DropInDir + "/devbundle.conf"
	daemonJSONPath = "/etc/docker/daemon.json"
	// restartMarker exists in the guest from the moment devbundle changes
	// a file dockerd reads until dockerd has restarted with it, so an
	// interrupted `up` restarts it next time.
	restartMarker = GuestCertDir + "/restart-pending"
)

// tcpHost is what dockerd listens on besides its unix socket.
var tcpHost = fmt.Sprintf("tcp://0.0.0.0:%d", GuestPort)

// DropInOptions say what the drop-in holds.
type DropInOptions struct {
	// Unit is the output of `systemctl cat docker.service` in the guest:
	// the unit file and its drop-ins, each under a "# /path" line.
	Unit string
	// Proxy is the HTTP(S) proxy for dockerd (pulls), "" for none.
	Proxy string
}

// RenderDropIn returns the systemd drop-in that makes dockerd listen on
// tcp://0.0.0.0:2376 with --tlsverify and devbundle's certificates. It
// keeps the unit's own ExecStart (its binary, its containerd socket, its
// $OPTIONS variables and its -H fd:// or unix socket) and only drops tcp
// hosts and TLS flags from it; a command with no host of its own gets the
// default unix socket back, which -H tcp://... would otherwise replace.
func RenderDropIn(opts DropInOptions) ([]byte, error) {
	exec, err := execStart(opts.Unit)
	if err != nil {
		return nil, err
	}
	words, err := splitCommand(exec)
	if err != nil {
		return nil, fmt.Errorf("docker.service's ExecStart %q: %w", exec, err)
	}
	kept, hasHost := filterFlags(words)
	if len(kept) == 0 {
		return nil, fmt.Errorf("docker.service's ExecStart %q has no command", exec)
	}
	if !hasHost {
		kept = append(kept, "-H", "unix:///var/run/docker.sock")
	}
	kept = append(kept,
		"--tlsverify",
		"--tlscacert="+GuestCA,
		"--tlscert="+GuestCert,
		"--tlskey="+GuestKey,
		"-H", tcpHost,
	)

	var b strings.Builder
	b.WriteString("# Written by devbundle on every `up`; edits are replaced.\n")
	b.WriteString("# dockerd also listens on " + tcpHost + " with TLS, accepting only clients\n")
	b.WriteString("# with a certificate of this machine's CA, beside its unix socket.\n")
	b.WriteString("[Service]\n")
	if opts.Proxy != "" {
		env, err := services.ProxyEnvironment(opts.Proxy, []string{"localhost", "127.0.0.1"})
		if err != nil {
			return nil, err
		}
		b.WriteString(env)
	}
	b.WriteString("ExecStart=\n")
	b.WriteString("ExecStart=" + strings.Join(kept, " ") + "\n")
	return []byte(b.String()), nil
}

// DropInMode is the drop-in's permission: 0600 when it carries proxy
// credentials, else 0644.
func DropInMode(proxy string) uint32 {
	if u, err := url.Parse(proxy); err == nil && u.User != nil {
		return 0o600
	}
	return 0o644
}

// unitHeader matches the line `systemctl cat` prints before each file.
var unitHeader = regexp.MustCompile(`^# (/\S+\.(?:service|conf))$`)

// execStart returns the ExecStart docker.service would have without
// devbundle's drop-in: the last non-empty one after applying resets
// ("ExecStart=" alone) in file order.
func execStart(unit string) (string, error) {
	var (
		file    string
		section string
		cmds    []string
		pending string // a line continued with a backslash
	)
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := unitHeader.FindStringSubmatch(line); m != nil && pending == "" {
			file, section = m[1], ""
			continue
		}
		if file == DropInPath {
			continue
		}
		if pending != "" {
			line = pending + " " + strings.TrimSpace(line)
			pending = ""
		} else {
			line = strings.TrimSpace(line)
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimRight(strings.TrimSuffix(line, `\`), " \t")
			continue
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = line
			continue
		}
		if section != "[Service]" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != "ExecStart" {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" {
			cmds = nil
			continue
		}
		cmds = append(cmds, value)
	}
	if len(cmds) == 0 {
		return "", errors.New("docker.service in the machine has no ExecStart; is docker installed from the distribution's package?")
	}
	return cmds[len(cmds)-1], nil
}

// splitCommand splits a systemd command line into its words as written
// (quotes kept), so words devbundle does not touch reach the drop-in
// byte for byte.
func splitCommand(s string) ([]string, error) {
	var words []string
	for i := 0; ; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return words, nil
		}
		end, err := wordEnd(s, i)
		if err != nil {
			return nil, err
		}
		words = append(words, s[i:end])
		i = end
	}
}

// wordEnd returns the index just past the word starting at i.
func wordEnd(s string, i int) (int, error) {
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ' ' || c == '\t':
			return i, nil
		}
	}
	if quote != 0 {
		return 0, fmt.Errorf("unterminated %c quote", quote)
	}
	return i, nil
}

// unquoteWord returns a word without its quotes (no escapes processed
// beyond \" \' and \\, enough to recognize flags).
func unquoteWord(w string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '\\' && i+1 < len(w):
			i++
			b.WriteByte(w[i])
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// tlsFlags are dockerd's TLS flags, which devbundle sets itself.
var tlsFlags = []string{"--tls", "--tlsverify", "--tlscacert", "--tlscert", "--tlskey"}

// filterFlags drops TCP hosts and TLS flags from dockerd's words and
// reports whether a host (fd:// or a unix socket) remains.
func filterFlags(words []string) (kept []string, hasHost bool) {
	for i := 0; i < len(words); i++ {
		w := unquoteWord(words[i])
		if i == 0 {
			kept = append(kept, words[i])
			continue
		}
		name, value, hasValue := strings.Cut(w, "=")
		switch {
		case name == "-H" || name == "--host":
			if !hasValue && i+1 < len(words) {
				i++
				value = unquoteWord(words[i])
				if isTCP(value) {
					continue
				}
				kept = append(kept, words[i-1], words[i])
				hasHost = true
				continue
			}
			if isTCP(value) {
				continue
			}
			kept = append(kept, words[i])
			hasHost = true
		case strings.HasPrefix(w, "-H") && len(w) > 2 && !strings.HasPrefix(w, "--"):
			// -Hfd:// (a shorthand with its value attached)
			if isTCP(strings.TrimPrefix(w[2:], "=")) {
				continue
			}
			kept = append(kept, words[i])
			hasHost = true
		case slices.Contains(tlsFlags, name):
			// --tlscacert PATH takes the next word, unless the value is attached
			// or the flag is boolean.
			if !hasValue && name != "--tls" && name != "--tlsverify" && i+1 < len(words) {
				i++
			}
		default:
			kept = append(kept, words[i])
		}
	}
	return kept, hasHost
}

func isTCP(host string) bool {
	return strings.HasPrefix(host, "tcp://") || strings.HasPrefix(host, "ssh://") || !strings.Contains(host, "://")
}

// daemonJSONConflicts are daemon.json keys that clash with the flags the
// drop-in sets: dockerd refuses to start when a setting is in both.
var daemonJSONConflicts = []string{"hosts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey"}

// checkDaemonJSON reports daemon.json content dockerd would refuse beside
// the drop-in's flags.
func checkDaemonJSON(data []byte) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s in the machine is not valid JSON (%w); dockerd would not start: fix or remove it", daemonJSONPath, err)
	}
	var clash []string
	for _, k := range daemonJSONConflicts {
		if _, ok := cfg[k]; ok {
			clash = append(clash, fmt.Sprintf("%q", k))
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("%s in the machine sets %s, which devbundle sets as dockerd flags (dockerd refuses a setting given both ways); remove %s from it with \"devbundle ssh -- sudoedit %s\"",
			daemonJSONPath, strings.Join(clash, ", "), strings.Join(clash, ", "), daemonJSONPath)
	}
	return nil
}
