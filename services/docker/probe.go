package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm/sshc"
)

// guestFiles are the files devbundle keeps in the guest, whose SHA-256 the
// probe reports so unchanged files are not uploaded again.
var guestFiles = []string{GuestCA, GuestCert, GuestKey, DropInPath}

// probeScript runs as root (through sudo -n) and prints key=value lines:
// everything Enable needs to decide what to do, in one SSH round trip.
// Multi-line values are base64. $1 is the login user.
const probeScript = `kv() { printf '%s=%s\n' "$1" "$2"; }
b64() { if [ -f "$1" ]; then base64 <"$1" | tr -d '\n'; fi; }
kv hostname "$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)"
kv user "$1"
kv groups "$(id -nG "$1" 2>/dev/null)"
kv systemctl "$(command -v systemctl)"
kv dockerd "$(command -v dockerd || command -v dockerd-current)"
if [ -e /run/ostree-booted ]; then kv ostree 1; else kv ostree 0; fi
for pm in apt-get dnf yum; do
	if command -v "$pm" >/dev/null 2>&1; then kv pm "$pm"; break; fi
done
kv apparmor "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
if command -v systemctl >/dev/null 2>&1; then
	systemctl show -p LoadState -p ActiveState -p UnitFileState docker.service 2>/dev/null
	kv unit "$(systemctl cat docker.service 2>/dev/null | base64 | tr -d '\n')"
fi
kv daemonjson "$(b64 /etc/docker/daemon.json)"
if [ -e ` + restartMarker + ` ]; then kv restartpending 1; fi
for f in @FILES@; do
	if [ -f "$f" ]; then kv "sha256:$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; fi
done
kv end 1
`

// probe is what the guest reported.
type probe struct {
	Hostname       string
	User           string
	Groups         []string
	Systemctl      bool
	Dockerd        string
	OSTree         bool
	PackageManager string
	AppArmor       bool
	LoadState      string // "loaded", "not-found", ...
	ActiveState    string // "active", "inactive", "failed", ...
	UnitFileState  string // "enabled", "disabled", ...
	Unit           string // systemctl cat docker.service
	DaemonJSON     []byte
	RestartPending bool
	Sums           map[string]string // guest path -> SHA-256 hex
}

// hasDocker reports whether dockerd and its unit are installed.
func (p *probe) hasDocker() bool {
	return p.Dockerd != "" && p.LoadState != "" && p.LoadState != "not-found"
}

// probeCommand is the command line for the probe: the login user's name
// is taken before sudo.
func probeCommand() string {
	var files []string
	for _, f := range guestFiles {
		files = append(files, sshc.Quote(f))
	}
	script := strings.Replace(probeScript, "@FILES@", strings.Join(files, " "), 1)
	return `sudo -n sh -c ` + sshc.Quote(script) + ` devbundle-probe "$(id -un)"`
}

// readProbe runs the probe in the guest.
func readProbe(ctx context.Context, g services.Guest) (*probe, error) {
	var stdout, stderr bytes.Buffer
	code, err := g.Run(ctx, probeCommand(), sshc.RunOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("inspect the machine for docker: %w", err)
	}
	p, err := parseProbe(stdout.Bytes())
	if err != nil || code != 0 {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "password is required") || strings.Contains(msg, "sudo") {
			return nil, fmt.Errorf("inspect the machine for docker: sudo -n failed (%s); the login user needs passwordless sudo, as Vagrant boxes give it", msg)
		}
		if err == nil {
			err = fmt.Errorf("exit status %d", code)
		}
		return nil, fmt.Errorf("inspect the machine for docker: %w: %s", err, msg)
	}
	return p, nil
}

// parseProbe parses the probe's output; it fails unless the output is
// complete.
func parseProbe(out []byte) (*probe, error) {
	p := &probe{Sums: map[string]string{}}
	err := services.ProbeLines(out, func(k, v string) error {
		switch k {
		case "hostname":
			p.Hostname = strings.TrimSpace(v)
		case "user":
			p.User = v
		case "groups":
			p.Groups = strings.Fields(v)
		case "systemctl":
			p.Systemctl = v != ""
		case "dockerd":
			p.Dockerd = v
		case "ostree":
			p.OSTree = v == "1"
		case "pm":
			p.PackageManager = v
		case "apparmor":
			p.AppArmor = strings.TrimSpace(v) == "Y"
		case "LoadState":
			p.LoadState = v
		case "ActiveState":
			p.ActiveState = v
		case "UnitFileState":
			p.UnitFileState = v
		case "unit", "daemonjson":
			data, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("probe output: %s is not base64: %w", k, err)
			}
			if k == "unit" {
				p.Unit = string(data)
			} else {
				p.DaemonJSON = data
			}
		case "restartpending":
			p.RestartPending = v == "1"
		default:
			if path, ok := strings.CutPrefix(k, "sha256:"); ok {
				p.Sums[path] = v
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
