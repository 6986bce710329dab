package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/kubernetes/kubeapi"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Enable starts the box's Kubernetes (see the package comment) and returns
// the State to record. On a machine where everything runs it costs one SSH
// command and three HTTPS requests (a handshake, /readyz, /version), and
// writes nothing unless the kubeconfig changed.
func (s *Service) Enable(ctx context.Context, sc services.Context) (json.RawMessage, error) {
	st, err := s.bringUp(ctx, sc, true)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// Start starts the control plane, waits for it, and rewrites the
// kubeconfig when its credentials changed.
func (s *Service) Start(ctx context.Context, sc services.Context) error {
	_, err := s.bringUp(ctx, sc, false)
	return err
}

func logger(sc services.Context) func(string, ...any) {
	if sc.Log == nil {
		return func(string, ...any) {}
	}
	return sc.Log
}

// bringUp is Enable without recording; withProxy also manages the proxy
// drop-ins (Start has no proxy setting to apply, so it leaves them).
func (s *Service) bringUp(ctx context.Context, sc services.Context, withProxy bool) (State, error) {
	m := sc.Machine
	logf := logger(sc)
	host, port, err := Endpoint(m)
	if err != nil {
		return State{}, err
	}
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return State{}, err
	}
	f, err := requireFlavour(p, m)
	if err != nil {
		return State{}, err
	}
	if p.SecurePort != 0 && p.SecurePort != GuestPort {
		return State{}, fmt.Errorf("the API server in machine %q is set to listen on port %d, but devbundle forwards port %d; set --secure-port=%d in the box", m.Name, p.SecurePort, GuestPort, GuestPort)
	}
	logf("kubernetes: the box runs Kubernetes as %s", describe(f))

	var restart []string
	if withProxy {
		if restart, err = applyProxy(ctx, sc, p, logf); err != nil {
			return State{}, err
		}
	}
	started, err := startUnits(ctx, sc.Guest, p, f, restart, logf)
	if err != nil {
		return State{}, err
	}
	if started {
		// Credentials may be made when the control plane first starts
		// (admin.conf by a PKI unit, k3s.yaml by k3s).
		if p, err = readProbe(ctx, sc.Guest); err != nil {
			return State{}, err
		}
	}
	creds, source, err := s.credentials(ctx, sc.Guest, p, f, logf)
	if err != nil {
		return State{}, err
	}

	e := kubeapi.Endpoint{Server: "https://" + net.JoinHostPort(host, strconv.Itoa(port)), Credentials: creds, Dial: sc.Dial}
	waitStart := time.Now()
	e, err = kubeapi.WaitReady(ctx, e, kubeapi.WaitOptions{
		Timeout: s.opts.ReadyTimeout, What: "the Kubernetes API server",
		Progress: func(elapsed time.Duration, last error) {
			logf("kubernetes: waiting for the API server's /readyz (%s so far; last: %v)", elapsed, last)
		},
	})
	if err != nil {
		return State{}, waitError(ctx, sc.Guest, f, err)
	}
	logf("kubernetes: %s is ready (waited %.1fs)", e.Server, time.Since(waitStart).Seconds())
	if e.ServerName != "" {
		logf("kubernetes: the server's certificate does not name %s; the kubeconfig checks it as %q", host, e.ServerName)
	}
	client, err := kubeapi.NewClient(e)
	if err != nil {
		return State{}, err
	}
	defer client.Close()
	ver, err := client.Version(ctx, "/version")
	if err != nil {
		return State{}, fmt.Errorf("ask the Kubernetes API server for its version: %w", err)
	}
	kc, err := kubeapi.Render(e, kubeapi.NamesFor("devbundle", m.Name))
	if err != nil {
		return State{}, err
	}
	if err := writeKubeconfig(KubeconfigPath(sc.Dir), kc, logf); err != nil {
		return State{}, err
	}
	logf("kubernetes: server %s answers at %s", ver.GitVersion, e.Server)
	return State{
		Flavour: f, Version: ver.GitVersion,
		Endpoint: net.JoinHostPort(host, strconv.Itoa(port)), GuestPort: GuestPort,
		TLSServerName: e.ServerName, CAFingerprint: creds.CAFingerprint(), Credentials: source,
	}, nil
}

// describe names a flavour for messages.
func describe(f Flavour) string {
	switch f {
	case FlavourUnits:
		return "systemd units (etcd, kube-apiserver, ...)"
	case FlavourKubeadm:
		return "kubeadm static pods under the kubelet"
	case FlavourK3s:
		return "k3s"
	}
	return string(f)
}

// requireFlavour refuses (exit 126) a machine without systemd or without
// any Kubernetes devbundle knows how to drive.
func requireFlavour(p *probe, m *vm.Machine) (Flavour, error) {
	if !p.Systemctl {
		return "", dberr.WithHint(dberr.ServiceUnavailable("machine %q does not run systemd, which devbundle needs to drive Kubernetes", m.Name),
			"use a box with systemd")
	}
	f := p.flavour()
	if f == "" {
		return "", dberr.WithHint(
			dberr.ServiceUnavailable("machine %q has no Kubernetes: no kube-apiserver.service, no kubeadm manifests with kubelet.service, no k3s.service", m.Name),
			"use a box that carries Kubernetes (for example one built with tests/box/build.sh --kubernetes), or leave kubernetes out of --services")
	}
	return f, nil
}

// startScript starts each unit given, in order, each after the one before
// is up; a unit that fails is printed as failed=<unit>.
const startScript = `for u in "$@"; do
	systemctl reset-failed "$u.service" >/dev/null 2>&1
	if ! systemctl start "$u.service"; then echo "failed=$u"; exit 2; fi
done`

// restartScript reloads systemd and restarts each unit given.
const restartScript = `systemctl daemon-reload || exit 1
for u in "$@"; do
	if ! systemctl restart "$u.service"; then echo "failed=$u"; exit 2; fi
done`

// startUnits starts the flavour's units that are not active, in order,
// after restarting those whose configuration changed. It reports whether
// it started anything.
func startUnits(ctx context.Context, g services.Guest, p *probe, f Flavour, restart []string, logf func(string, ...any)) (bool, error) {
	if len(restart) > 0 {
		logf("kubernetes: restarting %s for the proxy", strings.Join(restart, ", "))
		if err := unitctl(ctx, g, "restart "+strings.Join(restart, ", "), restartScript, restart...); err != nil {
			return false, err
		}
	}
	var todo []string
	for _, u := range p.startOrder(f) {
		if !p.Units[u].active() && !slices.Contains(restart, u) {
			todo = append(todo, u)
		}
	}
	if len(todo) == 0 {
		return len(restart) > 0, nil
	}
	logf("kubernetes: starting %s", strings.Join(todo, ", "))
	start := time.Now()
	if err := unitctl(ctx, g, "start "+strings.Join(todo, ", "), startScript, todo...); err != nil {
		return false, err
	}
	logf("kubernetes: started %d units in %.1fs", len(todo), time.Since(start).Seconds())
	return true, nil
}

// unitctl runs a systemctl script over units; when a unit fails, the
// error names it and carries the end of its journal.
func unitctl(ctx context.Context, g services.Guest, what, script string, units ...string) error {
	code, out, stderr, err := services.RunRoot(ctx, g, script, units...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code == 0 {
		return nil
	}
	failed := ""
	for _, line := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(line, "failed="); ok {
			failed = u
		}
	}
	if failed == "" {
		msg, _ := services.SudoHint(stderr)
		return fmt.Errorf("%s: exit status %d: %s", what, code, services.Tail(msg, 400))
	}
	msg := fmt.Sprintf("%s failed to start in the machine: %s", failed, services.Tail(stderr, 400))
	if j := journal(ctx, g, failed); j != "" {
		msg += "\n" + failed + "'s log:\n" + j
	}
	return dberr.WithHint(errors.New(msg), fmt.Sprintf("see \"devbundle ssh -- sudo journalctl -u %s.service\"", failed))
}

// journal returns the end of a unit's journal, "" when unreadable.
func journal(ctx context.Context, g services.Guest, unit string) string {
	_, out, _, err := services.RunRoot(ctx, g, `journalctl -u "$1.service" -n 15 --no-pager -o cat 2>/dev/null`, unit)
	if err != nil {
		return ""
	}
	return services.Tail(strings.TrimRight(out, "\n"), 2000)
}

// waitError adds the main unit's state and journal to a failed wait.
func waitError(ctx context.Context, g services.Guest, f Flavour, err error) error {
	var te *kubeapi.TimeoutError
	if !errors.As(err, &te) {
		return dberr.WithHint(err, "the cluster's certificates may have changed: run \"devbundle up\" again")
	}
	unit := mainUnit(f)
	msg := err.Error()
	if j := journal(ctx, g, unit); j != "" {
		msg += "\n" + unit + "'s log:\n" + j
	}
	return dberr.WithHint(errors.New(msg), fmt.Sprintf("see \"devbundle ssh -- sudo journalctl -u %s.service\"; under software emulation the first start can take minutes", unit))
}

// renewBefore is how long before its expiry devbundle remakes a client
// certificate it signed.
const renewBefore = 30 * 24 * time.Hour

// credentials returns the admin credentials the box has, making a client
// certificate with the cluster CA when it has only the CA's key, and the
// guest path they came from.
func (s *Service) credentials(ctx context.Context, g services.Guest, p *probe, f Flavour, logf func(string, ...any)) (kubeapi.Credentials, string, error) {
	for _, path := range credentialFiles(f) {
		data, ok := p.Files[path]
		if !ok {
			continue
		}
		if path == generatedConf {
			if c, err := resolve(ctx, g, path, data); err == nil && c.ClientNotAfter().After(s.opts.Now().Add(renewBefore)) {
				return c, path, nil
			}
			logf("kubernetes: devbundle's client certificate in the machine expires soon or does not load; making a new one")
			break
		}
		c, err := resolve(ctx, g, path, data)
		return c, path, err
	}
	cert, key, ok := p.caPair()
	if !ok {
		return kubeapi.Credentials{}, "", dberr.WithHint(
			fmt.Errorf("the machine has no admin kubeconfig (%s) and no cluster CA key to make one with", credentialFiles(f)[0]),
			"check that the control plane started: \"devbundle ssh -- sudo systemctl status "+mainUnit(f)+"\"")
	}
	if !p.OpenSSL {
		return kubeapi.Credentials{}, "", dberr.WithHint(
			fmt.Errorf("the machine has no admin kubeconfig, and no openssl to make a client certificate with its cluster CA (%s)", cert),
			"install openssl in the box, or give it an admin kubeconfig at "+adminConf)
	}
	logf("kubernetes: making an admin client certificate with the cluster CA %s", cert)
	if _, err := services.MustRoot(ctx, g, "make an admin client certificate in the machine", makeAdminScript, cert, key); err != nil {
		return kubeapi.Credentials{}, "", err
	}
	files, err := readFiles(ctx, g, generatedConf)
	if err != nil {
		return kubeapi.Credentials{}, "", err
	}
	c, err := resolve(ctx, g, generatedConf, files[generatedConf])
	return c, generatedConf, err
}

// resolve parses an admin kubeconfig and reads the files it refers to.
func resolve(ctx context.Context, g services.Guest, path string, data []byte) (kubeapi.Credentials, error) {
	a, err := kubeapi.ParseAdmin(data)
	if err != nil {
		return kubeapi.Credentials{}, fmt.Errorf("%s in the machine: %w", path, err)
	}
	var files map[string][]byte
	if missing := a.Missing(); len(missing) > 0 {
		if files, err = readFiles(ctx, g, missing...); err != nil {
			return kubeapi.Credentials{}, err
		}
	}
	c, err := a.Resolve(files)
	if err != nil {
		return kubeapi.Credentials{}, fmt.Errorf("%s in the machine: %w", path, err)
	}
	return c, nil
}

// readFilesScript prints each readable file given as path=base64.
const readFilesScript = `for f in "$@"; do
	if [ -f "$f" ]; then printf '%s=%s\n' "$f" "$(base64 <"$f" | tr -d '\n')"; fi
done`

// readFiles reads files from the guest as root; missing ones are left out.
func readFiles(ctx context.Context, g services.Guest, paths ...string) (map[string][]byte, error) {
	out, err := services.MustRoot(ctx, g, "read the cluster's credentials in the machine", readFilesScript, paths...)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		data, err := decodeB64(v)
		if err != nil {
			return nil, fmt.Errorf("read %s in the machine: %w", k, err)
		}
		files[k] = data
	}
	return files, nil
}

// makeAdminScript signs a client certificate in group system:masters
// with the cluster CA ($1, key $2), valid one year, and writes an admin
// kubeconfig embedding it at generatedConf (0600). The key never leaves
// the machine except inside that kubeconfig, read by root over SSH.
const makeAdminScript = `set -e
umask 077
d=` + generatedDir + `
install -d -m 0700 "$d"
openssl req -new -newkey rsa:2048 -nodes -keyout "$d/admin.key" -subj "/O=system:masters/CN=devbundle-admin" -out "$d/admin.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$d/admin.ext"
openssl x509 -req -in "$d/admin.csr" -CA "$1" -CAkey "$2" -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 365 -sha256 -extfile "$d/admin.ext" -out "$d/admin.crt" 2>/dev/null
enc() { base64 <"$1" | tr -d '\n'; }
cat >"$d/admin.conf.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(enc "$1")
users:
- name: devbundle-admin
  user:
    client-certificate-data: $(enc "$d/admin.crt")
    client-key-data: $(enc "$d/admin.key")
contexts:
- name: local
  context:
    cluster: local
    user: devbundle-admin
current-context: local
EOF
mv "$d/admin.conf.tmp" "$d/admin.conf"
rm -f "$d/admin.csr" "$d/admin.ext"`

// writeKubeconfig writes the host's kubeconfig atomically (0600) when
// its content changed, and tightens its mode when it did not.
func writeKubeconfig(path string, data []byte, logf func(string, ...any)) error {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("kubeconfig %q: %w", path, err)
		}
		return nil
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig: %w", err)
	}
	logf("kubernetes: wrote %s", path)
	return nil
}

// guestNoProxy are the destinations the runtime reaches directly: the
// machine itself, the cluster's service and pod ranges, and its names.
var guestNoProxy = []string{"localhost", "127.0.0.1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", ".svc", ".cluster.local"}

// applyProxy writes, changes or removes the proxy drop-in of the units
// that pull images, and returns the active ones that must restart.
func applyProxy(ctx context.Context, sc services.Context, p *probe, logf func(string, ...any)) ([]string, error) {
	proxy, warning := services.GuestProxy(sc.Machine, sc.Proxy)
	if warning != "" {
		logf("kubernetes: %s", warning)
	}
	var data []byte
	var mode os.FileMode
	if proxy != "" {
		var err error
		if data, mode, err = services.ProxyDropIn(proxy, guestNoProxy); err != nil {
			return nil, err
		}
	}
	want := sha256Hex(data)
	var restart []string
	for _, u := range proxyUnits {
		if !p.loaded(u) {
			continue
		}
		path := "/etc/systemd/system/" + u + ".service.d/" + proxyDropIn
		have, exists := p.Sums[path]
		switch {
		case proxy == "" && exists:
			logf("kubernetes: removing the proxy from %s", u)
			if _, err := services.MustRoot(ctx, sc.Guest, "remove the proxy drop-in of "+u, `rm -f "$1"`, path); err != nil {
				return nil, err
			}
		case proxy != "" && have != want:
			logf("kubernetes: giving %s the proxy", u)
			if _, err := services.MustRoot(ctx, sc.Guest, "prepare "+u+"'s drop-in folder", `install -d -m 0755 "$1"`, "/etc/systemd/system/"+u+".service.d"); err != nil {
				return nil, err
			}
			if err := sc.Guest.Upload(ctx, path, data, mode, sshc.UploadOptions{Sudo: true}); err != nil {
				return nil, fmt.Errorf("upload %s's proxy drop-in: %w", u, err)
			}
		default:
			continue
		}
		// A stopped unit reads the drop-in when it starts; reload so it
		// does.
		if p.Units[u].active() {
			restart = append(restart, u)
		} else if _, err := services.MustRoot(ctx, sc.Guest, "reload systemd", "systemctl daemon-reload"); err != nil {
			return nil, err
		}
	}
	return restart, nil
}
