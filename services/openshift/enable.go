package openshift

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// originUnits are an OpenShift 3 master's units, in start order: the
// all-in-one unit (ADB's openshift.service, origin.service) or the split
// master and node units of an RPM install.
var originUnits = []string{
	"openshift", "origin",
	"origin-master", "origin-master-api", "origin-master-controllers", "origin-node",
	"atomic-openshift-master", "atomic-openshift-master-api", "atomic-openshift-master-controllers", "atomic-openshift-node",
}

// runtimeUnits are the container runtimes OpenShift runs on; started,
// never stopped (docker may be the docker service's too).
var runtimeUnits = []string{"docker", "crio"}

// adminKubeconfigs are where boxes keep OpenShift's admin kubeconfig.
var adminKubeconfigs = map[Flavour][]string{
	FlavourMicroShift: {"/var/lib/microshift/resources/kubeadmin/kubeconfig"},
	FlavourOrigin: {
		"/var/lib/origin/openshift.local.config/master/admin.kubeconfig",
		"/etc/origin/master/admin.kubeconfig",
		"/var/lib/openshift/openshift.local.config/master/admin.kubeconfig",
	},
}

// probeScript prints, as root, the units' states, the state of an
// "origin" container (`oc cluster up`), and the admin kubeconfigs found.
const probeScript = `kv() { printf '%s=%s\n' "$1" "$2"; }
kv systemctl "$(command -v systemctl)"
if command -v systemctl >/dev/null 2>&1; then
	for u in @UNITS@; do
		systemctl show -p LoadState -p ActiveState "$u.service" 2>/dev/null | sed "s/^/unit.$u./"
	done
fi
if command -v docker >/dev/null 2>&1; then kv container "$(docker inspect -f '{{.State.Running}}' origin 2>/dev/null)"; fi
for f in @FILES@; do
	if [ -f "$f" ]; then kv "file:$f" "$(base64 <"$f" | tr -d '\n')"; fi
done
kv end 1
`

type probe struct {
	Systemctl bool
	Units     map[string][2]string // unit -> LoadState, ActiveState
	// Container is "true"/"false" for an "origin" container, "" for none.
	Container string
	Files     map[string][]byte
}

func (p *probe) loaded(u string) bool { return p.Units[u][0] == "loaded" }
func (p *probe) active(u string) bool { return p.Units[u][1] == "active" }

func probeCommand() string {
	var files []string
	for _, f := range []Flavour{FlavourMicroShift, FlavourOrigin} {
		files = append(files, adminKubeconfigs[f]...)
	}
	units := append(append(slices.Clone(originUnits), runtimeUnits...), "microshift")
	r := strings.NewReplacer("@UNITS@", strings.Join(units, " "), "@FILES@", strings.Join(files, " "))
	return "sudo -n sh -c " + sshc.Quote(r.Replace(probeScript)) + " devbundle-openshift-probe"
}

func readProbe(ctx context.Context, g services.Guest) (*probe, error) {
	var stdout, stderr bytes.Buffer
	code, err := g.Run(ctx, probeCommand(), sshc.RunOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("inspect the machine for openshift: %w", err)
	}
	p := &probe{Units: map[string][2]string{}, Files: map[string][]byte{}}
	perr := services.ProbeLines(stdout.Bytes(), func(k, v string) error {
		switch {
		case k == "systemctl":
			p.Systemctl = v != ""
		case k == "container":
			p.Container = v
		case strings.HasPrefix(k, "unit."):
			unit, field, _ := strings.Cut(strings.TrimPrefix(k, "unit."), ".")
			st := p.Units[unit]
			switch field {
			case "LoadState":
				st[0] = v
			case "ActiveState":
				st[1] = v
			}
			p.Units[unit] = st
		case strings.HasPrefix(k, "file:"):
			data, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("inspect the machine for openshift: %s is not base64: %w", k, err)
			}
			p.Files[strings.TrimPrefix(k, "file:")] = data
		}
		return nil
	})
	if perr != nil && !errors.Is(perr, services.ErrProbeIncomplete) {
		return nil, perr
	}
	if perr != nil || code != 0 {
		msg, _ := services.SudoHint(strings.TrimSpace(stderr.String()))
		return nil, fmt.Errorf("inspect the machine for openshift: incomplete answer (exit status %d): %s", code, msg)
	}
	return p, nil
}

// flavour says how the box runs OpenShift, "" when it does not.
func (p *probe) flavour() Flavour {
	if p.loaded("microshift") {
		return FlavourMicroShift
	}
	if slices.ContainsFunc(originUnits, p.loaded) || p.Container != "" {
		return FlavourOrigin
	}
	return ""
}

// startOrder is the units to start: the runtime, then OpenShift's.
func (p *probe) startOrder(f Flavour) []string {
	var out []string
	for _, u := range runtimeUnits {
		if p.loaded(u) {
			out = append(out, u)
		}
	}
	if f == FlavourMicroShift {
		return append(out, "microshift")
	}
	for _, u := range originUnits {
		if p.loaded(u) {
			out = append(out, u)
		}
	}
	return out
}

// stopOrder is OpenShift's units in reverse, the runtime left running.
func (p *probe) stopOrder(f Flavour) []string {
	out := slices.DeleteFunc(p.startOrder(f), func(u string) bool { return slices.Contains(runtimeUnits, u) })
	slices.Reverse(out)
	return out
}

// running reports whether OpenShift runs: its main unit, or the origin
// container.
func (p *probe) running(f Flavour) bool {
	if f == FlavourMicroShift {
		return p.active("microshift")
	}
	if p.Container == "true" {
		return true
	}
	units := slices.DeleteFunc(p.startOrder(f), func(u string) bool { return slices.Contains(runtimeUnits, u) })
	return len(units) > 0 && p.active(units[0])
}

func requireFlavour(p *probe, m *vm.Machine) (Flavour, error) {
	f := p.flavour()
	if !p.Systemctl || f == "" {
		return "", dberr.WithHint(
			dberr.ServiceUnavailable("machine %q has no OpenShift: no openshift.service, origin-master units, \"origin\" container or microshift.service", m.Name),
			"use a box that carries OpenShift, or leave openshift out of --services")
	}
	return f, nil
}

// Enable starts OpenShift and returns the State to record.
func (s *Service) Enable(ctx context.Context, sc services.Context) (json.RawMessage, error) {
	st, err := s.bringUp(ctx, sc)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// Start starts OpenShift and waits for its API.
func (s *Service) Start(ctx context.Context, sc services.Context) error {
	_, err := s.bringUp(ctx, sc)
	return err
}

func (s *Service) bringUp(ctx context.Context, sc services.Context) (State, error) {
	logf := sc.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	m := sc.Machine
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return State{}, err
	}
	f, err := requireFlavour(p, m)
	if err != nil {
		return State{}, err
	}
	host, port, err := Endpoint(m, f)
	if err != nil {
		return State{}, err
	}
	if err := startOpenShift(ctx, sc.Guest, p, f, logf); err != nil {
		return State{}, err
	}
	if p, err = readProbe(ctx, sc.Guest); err != nil {
		return State{}, err
	}
	var admin []byte
	var source string
	for _, path := range adminKubeconfigs[f] {
		if data, ok := p.Files[path]; ok {
			admin, source = data, path
			break
		}
	}
	if admin == nil {
		return State{}, dberr.WithHint(fmt.Errorf("machine %q has no OpenShift admin kubeconfig (looked at %s)", m.Name, strings.Join(adminKubeconfigs[f], ", ")),
			"check that OpenShift started: \"devbundle ssh -- sudo journalctl -u "+string(f)+"\"")
	}
	a, err := kubeapi.ParseAdmin(admin)
	if err != nil {
		return State{}, fmt.Errorf("%s in the machine: %w", source, err)
	}
	if len(a.Missing()) > 0 {
		return State{}, fmt.Errorf("%s in the machine refers to other files (%s); devbundle needs the credentials embedded", source, strings.Join(a.Missing(), ", "))
	}
	creds, err := a.Resolve(nil)
	if err != nil {
		return State{}, fmt.Errorf("%s in the machine: %w", source, err)
	}
	e := kubeapi.Endpoint{Server: "https://" + net.JoinHostPort(host, strconv.Itoa(port)), Credentials: creds, Dial: sc.Dial}
	e, err = kubeapi.WaitReady(ctx, e, kubeapi.WaitOptions{
		Paths: []string{"/readyz", "/healthz"}, Timeout: s.opts.ReadyTimeout, What: "the OpenShift API",
		Progress: func(elapsed time.Duration, last error) {
			logf("openshift: waiting for the API's health (%s so far; last: %v)", elapsed, last)
		},
	})
	if err != nil {
		return State{}, dberr.WithHint(err, "see \"devbundle ssh -- sudo journalctl -u "+p.mainUnit(f)+"\"")
	}
	client, err := kubeapi.NewClient(e)
	if err != nil {
		return State{}, err
	}
	defer client.Close()
	kube, err := client.Version(ctx, "/version")
	if err != nil {
		return State{}, fmt.Errorf("ask the OpenShift API for its Kubernetes version: %w", err)
	}
	ver, from, err := openshiftVersion(ctx, client)
	if err != nil {
		return State{}, err
	}
	st := State{
		Flavour: f, Version: ver, VersionSource: from, KubernetesVersion: kube.GitVersion,
		Endpoint: net.JoinHostPort(host, strconv.Itoa(port)), GuestPort: guestPort(f),
		TLSServerName: e.ServerName, CAFingerprint: creds.CAFingerprint(), Console: f == FlavourOrigin,
	}
	if f == FlavourOrigin {
		st.Registry = registryRoute(ctx, client)
	}
	kc, err := kubeapi.Render(e, kubeapi.NamesFor("devbundle-openshift", m.Name))
	if err != nil {
		return State{}, err
	}
	if old, err := os.ReadFile(KubeconfigPath(sc.Dir)); err != nil || !bytes.Equal(old, kc) {
		if err := atomicfile.WriteFile(KubeconfigPath(sc.Dir), kc, 0o600); err != nil {
			return State{}, fmt.Errorf("write the kubeconfig: %w", err)
		}
	}
	logf("openshift: %s %s (Kubernetes %s) answers at %s", f, ver, kube.GitVersion, e.Server)
	return st, nil
}

func (p *probe) mainUnit(f Flavour) string {
	if f == FlavourMicroShift {
		return "microshift"
	}
	for _, u := range originUnits {
		if p.loaded(u) {
			return u
		}
	}
	return "docker"
}

const startScript = `container=$1; shift
for u in "$@"; do
	systemctl reset-failed "$u.service" >/dev/null 2>&1
	if ! systemctl start "$u.service"; then echo "failed=$u"; exit 2; fi
done
if [ "$container" = start ]; then docker start origin >/dev/null || { echo failed=origin-container; exit 2; }; fi
exit 0`

func startOpenShift(ctx context.Context, g services.Guest, p *probe, f Flavour, logf func(string, ...any)) error {
	var todo []string
	for _, u := range p.startOrder(f) {
		if !p.active(u) {
			todo = append(todo, u)
		}
	}
	container := "no"
	if f == FlavourOrigin && p.Container == "false" {
		container = "start"
	}
	if len(todo) == 0 && container == "no" {
		return nil
	}
	logf("openshift: starting %s (origin container: %s)", strings.Join(todo, ", "), container)
	code, out, stderr, err := services.RunRoot(ctx, g, startScript, append([]string{container}, todo...)...)
	if err != nil {
		return fmt.Errorf("start openshift: %w", err)
	}
	if code != 0 {
		failed := "openshift"
		for _, line := range strings.Split(out, "\n") {
			if u, ok := strings.CutPrefix(line, "failed="); ok {
				failed = u
			}
		}
		msg, _ := services.SudoHint(stderr)
		return dberr.WithHint(fmt.Errorf("%s failed to start in the machine: %s", failed, services.Tail(msg, 400)),
			"see \"devbundle ssh -- sudo journalctl -u "+p.mainUnit(f)+"\"")
	}
	return nil
}

// openshiftVersion asks, in order: OpenShift 3's /version/openshift, the
// OpenShift 4 ClusterVersion object, and MicroShift's version ConfigMap.
func openshiftVersion(ctx context.Context, c *kubeapi.Client) (version, source string, err error) {
	const (
		v3         = "/version/openshift"
		clusterVer = "/apis/config.openshift.io/v1/clusterversions/version"
		microshift = "/api/v1/namespaces/kube-public/configmaps/microshift-version"
	)
	notFound := func(err error) bool {
		var se *kubeapi.StatusError
		return errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusForbidden)
	}
	var errs []error
	v, err := c.Version(ctx, v3)
	if err == nil {
		return v.GitVersion, v3, nil
	}
	if !notFound(err) {
		return "", "", fmt.Errorf("ask OpenShift for its version: %w", err)
	}
	errs = append(errs, err)
	var cv struct {
		Status struct {
			Desired struct {
				Version string `json:"version"`
			} `json:"desired"`
		} `json:"status"`
	}
	if err := c.GetJSON(ctx, clusterVer, &cv); err == nil && cv.Status.Desired.Version != "" {
		return cv.Status.Desired.Version, clusterVer, nil
	} else if err != nil && !notFound(err) {
		return "", "", fmt.Errorf("ask OpenShift for its version: %w", err)
	} else if err != nil {
		errs = append(errs, err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := c.GetJSON(ctx, microshift, &cm); err == nil && cm.Data["version"] != "" {
		return cm.Data["version"], microshift, nil
	} else if err != nil {
		errs = append(errs, err)
	}
	return "", "", fmt.Errorf("the server answers like Kubernetes but reports no OpenShift version (%w)", errors.Join(errs...))
}

// registryRoute is the host of the docker-registry route in "default"
// (route.openshift.io since 3.6, the older /oapi before), "" without one.
func registryRoute(ctx context.Context, c *kubeapi.Client) string {
	var route struct {
		Spec struct {
			Host string `json:"host"`
		} `json:"spec"`
	}
	for _, path := range []string{
		"/apis/route.openshift.io/v1/namespaces/default/routes/docker-registry",
		"/oapi/v1/namespaces/default/routes/docker-registry",
	} {
		if err := c.GetJSON(ctx, path, &route); err == nil && route.Spec.Host != "" {
			return route.Spec.Host
		}
	}
	return ""
}

// Status is running when OpenShift's main unit (or the origin container)
// runs, unavailable when the box has no OpenShift, else stopped.
func (s *Service) Status(ctx context.Context, sc services.Context) (services.Status, error) {
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return "", err
	}
	f := p.flavour()
	switch {
	case !p.Systemctl || f == "":
		return services.StatusUnavailable, nil
	case p.running(f):
		return services.StatusRunning, nil
	}
	return services.StatusStopped, nil
}

const stopScript = `container=$1; shift
for u in "$@"; do systemctl stop "$u.service" || exit 2; done
if [ "$container" = stop ]; then docker stop origin >/dev/null || exit 3; fi
exit 0`

// Stop stops OpenShift's units in reverse order (and the origin
// container); the container runtime keeps running.
func (s *Service) Stop(ctx context.Context, sc services.Context) error {
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return err
	}
	f, err := requireFlavour(p, sc.Machine)
	if err != nil {
		return err
	}
	container := "no"
	if p.Container == "true" {
		container = "stop"
	}
	units := p.stopOrder(f)
	if _, err := services.MustRoot(ctx, sc.Guest, "stop openshift ("+strings.Join(units, ", ")+")", stopScript, append([]string{container}, units...)...); err != nil {
		return dberr.WithHint(err, "see \"devbundle ssh -- sudo systemctl status "+p.mainUnit(f)+"\"")
	}
	return nil
}
