package sshc

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// StanzaOptions are the facts of one machine for ConfigStanza.
type StanzaOptions struct {
	// Host is the name the user types: `ssh <Host>`. Usually the machine's
	// name.
	Host string
	// HostName is where sshd is reached; empty means 127.0.0.1.
	HostName string
	// Port is the forwarded SSH port.
	Port int
	// User is the login user.
	User string
	// IdentityFile is the machine's private key (LoadOrCreateKey's path).
	IdentityFile string
	// KnownHostsFile is the machine's known_hosts (Pinning.File).
	KnownHostsFile string
	// HostKeyAlias is the name the host key is pinned under
	// (Pinning.Alias, HostKeyAlias(machine)).
	HostKeyAlias string
}

// ConfigStanza renders an OpenSSH client configuration block that reaches
// the machine with its own key and checks its pinned host key, for
// `devbundle ssh-config` (append it to ~/.ssh/config, or use `ssh -F`).
func ConfigStanza(o StanzaOptions) (string, error) {
	return renderStanza(o, runtime.GOOS)
}

func renderStanza(o StanzaOptions, goos string) (string, error) {
	if o.HostName == "" {
		o.HostName = "127.0.0.1"
	}
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"Host", o.Host}, {"HostName", o.HostName}, {"User", o.User}, {"HostKeyAlias", o.HostKeyAlias},
	} {
		if !aliasPattern.MatchString(f.value) {
			errs = append(errs, fmt.Errorf("ssh-config %s %q must be letters, digits, '.', '_' or '-'", f.name, f.value))
		}
	}
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("ssh-config Port %d is not a TCP port", o.Port))
	}
	identity, err := configPath("IdentityFile", o.IdentityFile, goos)
	errs = append(errs, err)
	knownHosts, err := configPath("UserKnownHostsFile", o.KnownHostsFile, goos)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return "", err
	}

	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "  %s %s\n", k, v) }
	fmt.Fprintf(&b, "Host %s\n", o.Host)
	line("HostName", o.HostName)
	line("Port", strconv.Itoa(o.Port))
	line("User", o.User)
	line("IdentityFile", identity)
	line("IdentitiesOnly", "yes")
	line("UserKnownHostsFile", knownHosts)
	line("StrictHostKeyChecking", "yes")
	line("HostKeyAlias", o.HostKeyAlias)
	line("CheckHostIP", "no")
	line("PasswordAuthentication", "no")
	return b.String(), nil
}

// configPath quotes a file path for ssh_config: in double quotes, with
// '%' doubled (ssh expands %-tokens in these paths) and, on Windows, '\'
// written as '/' (which Windows accepts, and which no version of ssh
// treats as an escape).
func configPath(key, p, goos string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("ssh-config %s is empty", key)
	}
	if strings.ContainsAny(p, "\"\n\r\x00") {
		return "", fmt.Errorf("ssh-config %s %q has a character ssh_config cannot carry (double quote or line break); move the devbundle data folder to a plainer path", key, p)
	}
	if goos == "windows" {
		p = strings.ReplaceAll(p, `\`, "/")
	} else {
		p = strings.ReplaceAll(p, `\`, `\\`)
	}
	p = strings.ReplaceAll(p, "%", "%%")
	return `"` + p + `"`, nil
}
