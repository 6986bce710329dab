package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// guestFile is one file devbundle keeps in the guest.
type guestFile struct {
	path string
	data []byte
	mode os.FileMode
}

// Enable sets dockerd up in the machine (see the package comment) and
// returns the State to record. On a machine where nothing changed it costs
// one SSH command and one HTTPS request: files are uploaded only when
// their content differs, and dockerd restarts only when something it
// reads changed (or an earlier `up` was interrupted before the restart).
func (s *Service) Enable(ctx context.Context, sc services.Context) (json.RawMessage, error) {
	m := sc.Machine
	logf := sc.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	host, port, err := Endpoint(m)
	if err != nil {
		return nil, err
	}

	proxy, warning := services.GuestProxy(m, sc.Proxy)
	if warning != "" {
		logf("docker: %s", warning)
	}
	if proxy != sc.Proxy {
		logf("docker: the guest reaches the proxy on the host's loopback at %s", services.HostFromUserMode)
	}
	sc.Proxy = proxy

	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return nil, err
	}
	if !p.Systemctl {
		return nil, fmt.Errorf("the machine does not run systemd, which devbundle needs to configure dockerd; use a box with systemd")
	}
	if !p.hasDocker() {
		if err := install(ctx, sc, p, logf); err != nil {
			return nil, err
		}
		if p, err = readProbe(ctx, sc.Guest); err != nil {
			return nil, err
		}
		if !p.hasDocker() {
			return nil, fmt.Errorf("docker was installed in the machine, but dockerd or docker.service is still missing (dockerd %q, unit %q)", p.Dockerd, p.LoadState)
		}
	}
	if err := checkDaemonJSON(p.DaemonJSON); err != nil {
		return nil, err
	}
	dropIn, err := RenderDropIn(DropInOptions{Unit: p.Unit, Proxy: sc.Proxy})
	if err != nil {
		return nil, err
	}

	sans := wantedSANs(m, host, p.Hostname, logf)
	certs, err := EnsureCerts(CertOptions{Dir: sc.Dir, Machine: m.Name, SANs: sans, Now: s.opts.Now})
	if err != nil {
		return nil, err
	}
	if len(certs.Made) > 0 {
		logf("docker: made certificates: %s (server names %v)", strings.Join(certs.Made, ", "), CertSANs(certs.Server))
	}

	files := []guestFile{
		{GuestCA, certs.CAPEM, 0o644},
		{GuestCert, certs.ServerCertPEM, 0o644},
		{GuestKey, certs.ServerKeyPEM, 0o600},
		{DropInPath, dropIn, os.FileMode(DropInMode(sc.Proxy))},
	}
	var changed []guestFile
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		if p.Sums[f.path] != hex.EncodeToString(sum[:]) {
			changed = append(changed, f)
		}
	}
	restart := len(changed) > 0 || p.RestartPending
	if len(changed) > 0 {
		if err := upload(ctx, sc.Guest, changed, logf); err != nil {
			return nil, err
		}
	}
	switch {
	case restart:
		if err := restartDocker(ctx, sc.Guest, p, logf); err != nil {
			return nil, err
		}
	case p.ActiveState != "active" || p.UnitFileState == "disabled":
		if err := startDocker(ctx, sc.Guest, p, logf); err != nil {
			return nil, err
		}
	}
	if p.User != "" && p.User != "root" && !slices.Contains(p.Groups, "docker") {
		if err := addToGroup(ctx, sc.Guest, p.User, logf); err != nil {
			return nil, err
		}
	}

	tls := tlsFiles{dir: sc.Dir}
	ver, err := verifyAPI(ctx, tls, host, port, s.opts.VerifyTimeout, sc.Dial)
	var certErr *certificateError
	if err != nil && errors.As(err, &certErr) && !restart {
		// dockerd runs with other certificates than the files in place
		// (changed behind devbundle's back): restart it once with them.
		logf("docker: %v; restarting dockerd with devbundle's certificates", err)
		if err := restartDocker(ctx, sc.Guest, p, logf); err != nil {
			return nil, err
		}
		ver, err = verifyAPI(ctx, tls, host, port, s.opts.VerifyTimeout, sc.Dial)
	}
	if err != nil {
		return nil, err
	}
	logf("docker: server %s (API %s) answers at %s over TLS", ver.Version, ver.APIVersion, ver.endpoint)

	return json.Marshal(State{
		Version:           ver.Version,
		APIVersion:        ver.APIVersion,
		MinAPIVersion:     ver.MinAPIVersion,
		GuestPort:         GuestPort,
		Endpoint:          ver.endpoint,
		SANs:              CertSANs(certs.Server),
		CAFingerprint:     Fingerprint(certs.CA),
		ServerFingerprint: Fingerprint(certs.Server),
		ClientFingerprint: Fingerprint(certs.Client),
	})
}

// wantedSANs are the names the server certificate must carry: 127.0.0.1
// and localhost (forwards), the endpoint's host, the VM's own address and
// the guest's host name.
func wantedSANs(m *vm.Machine, endpointHost, hostname string, logf func(string, ...any)) []string {
	sans := []string{"127.0.0.1", "localhost", endpointHost}
	if m.Address != "" {
		sans = append(sans, m.Address)
	}
	if hostname != "" {
		if _, err := NormalizeSANs([]string{hostname}); err != nil {
			logf("docker: the guest's host name %q cannot be put in a certificate; leaving it out", hostname)
		} else {
			sans = append(sans, hostname)
		}
	}
	return sans
}

// runRoot runs script as root in the guest (sudo -n sh -c), with args as
// $1..., and returns its exit status and output.
func runRoot(ctx context.Context, g services.Guest, script string, args ...string) (code int, stdout, stderr string, err error) {
	cmd := "sudo -n sh -c " + sshc.Quote(script) + " devbundle"
	for _, a := range args {
		cmd += " " + sshc.Quote(a)
	}
	var out, errOut bytes.Buffer
	code, err = g.Run(ctx, cmd, sshc.RunOptions{Stdout: &out, Stderr: &errOut})
	return code, out.String(), strings.TrimSpace(errOut.String()), err
}

// mustRoot is runRoot that fails on a non-zero exit, naming what it did.
func mustRoot(ctx context.Context, g services.Guest, what, script string, args ...string) error {
	code, _, stderr, err := runRoot(ctx, g, script, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code != 0 {
		return fmt.Errorf("%s: exit status %d: %s", what, code, tail(stderr, 800))
	}
	return nil
}

// upload writes the changed files into the guest, after leaving the
// restart marker so an interrupted `up` still restarts dockerd next time.
func upload(ctx context.Context, g services.Guest, files []guestFile, logf func(string, ...any)) error {
	prepare := `set -e
install -d -m 0755 -o root -g root /etc/docker
install -d -m 0700 -o root -g root ` + GuestCertDir + `
install -d -m 0755 -o root -g root ` + DropInDir + `
: >` + restartMarker
	if err := mustRoot(ctx, g, "prepare docker's folders in the machine", prepare); err != nil {
		return err
	}
	for _, f := range files {
		logf("docker: uploading %s", f.path)
		if err := g.Upload(ctx, f.path, f.data, f.mode, sshc.UploadOptions{Sudo: true}); err != nil {
			return fmt.Errorf("upload docker's configuration: %w", err)
		}
	}
	return nil
}

// restartScript reloads systemd, enables and restarts docker, and removes
// the restart marker once dockerd runs. reset-failed clears systemd's
// start limit left by earlier failures.
const restartScript = `systemctl daemon-reload || exit 1
systemctl reset-failed docker.service >/dev/null 2>&1
if [ "$1" = disabled ]; then systemctl enable docker.service || exit 1; fi
systemctl restart docker.service || exit 2
rm -f ` + restartMarker

func restartDocker(ctx context.Context, g services.Guest, p *probe, logf func(string, ...any)) error {
	logf("docker: restarting dockerd with the TLS listener on port %d", GuestPort)
	return dockerctl(ctx, g, "restart dockerd", restartScript, p.UnitFileState)
}

const startScript = `if [ "$1" = disabled ]; then systemctl enable docker.service || exit 1; fi
systemctl start docker.service || exit 2`

func startDocker(ctx context.Context, g services.Guest, p *probe, logf func(string, ...any)) error {
	logf("docker: starting dockerd (it was %s, %s)", p.ActiveState, p.UnitFileState)
	return dockerctl(ctx, g, "start dockerd", startScript, p.UnitFileState)
}

// dockerctl runs a systemctl script; when dockerd fails to start, the
// error carries the end of its journal.
func dockerctl(ctx context.Context, g services.Guest, what, script string, args ...string) error {
	code, _, stderr, err := runRoot(ctx, g, script, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s: exit status %d: %s", what, code, tail(stderr, 400))
	if code == 2 {
		if _, journal, _, jerr := runRoot(ctx, g, `journalctl -u docker.service -n 15 --no-pager -o cat 2>/dev/null`); jerr == nil && strings.TrimSpace(journal) != "" {
			msg += "\ndockerd's log:\n" + tail(strings.TrimRight(journal, "\n"), 2000)
		}
	}
	return dberr.WithHint(errors.New(msg), `see "devbundle ssh -- journalctl -u docker.service"`)
}

// addToGroup lets the login user run docker in the machine without sudo.
func addToGroup(ctx context.Context, g services.Guest, user string, logf func(string, ...any)) error {
	logf("docker: adding %s to the docker group", user)
	return mustRoot(ctx, g, "add "+user+" to the docker group",
		`getent group docker >/dev/null || groupadd --system docker || exit 1
usermod -aG docker "$1"`, user)
}

// tail returns the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
