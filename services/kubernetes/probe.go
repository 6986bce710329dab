package kubernetes

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Flavour is how a box runs Kubernetes.
type Flavour string

// The flavours devbundle drives.
const (
	// FlavourUnits is one systemd unit per component (etcd,
	// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
	// kube-proxy), as the test box and the old ADB box have.
	FlavourUnits Flavour = "units"
	// FlavourKubeadm is the kubelet running the control plane as static
	// pods from /etc/kubernetes/manifests.
	FlavourKubeadm Flavour = "kubeadm"
	// FlavourK3s is k3s.service, all components in one process.
	FlavourK3s Flavour = "k3s"
)

// Guest paths.
const (
	kubeadmManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"
	adminConf       = "/etc/kubernetes/admin.conf"
	k3sYAML         = "/etc/rancher/k3s/k3s.yaml"
	// generatedDir holds the admin kubeconfig devbundle makes when a box
	// has a cluster CA's key but no admin kubeconfig.
	generatedDir  = "/etc/devbundle/kubernetes"
	generatedConf = generatedDir + "/admin.conf"
	proxyDropIn   = "devbundle-proxy.conf"
)

// caPairs are where boxes keep the cluster CA and its key (kubeadm's
// layout, and the "the hard way" layout).
var caPairs = [][2]string{
	{"/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key"},
	{"/var/lib/kubernetes/ca.pem", "/var/lib/kubernetes/ca-key.pem"},
	{"/etc/kubernetes/ca.crt", "/etc/kubernetes/ca.key"},
}

// probedUnits are the units the probe reports on.
var probedUnits = []string{
	"etcd", "containerd", "crio", "docker",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
	"k3s",
}

// runtimeUnits are container runtimes a kubelet may use, in preference
// order; docker only counts when neither of the others is installed.
var runtimeUnits = []string{"containerd", "crio"}

// proxyUnits are the units that pull images and so get the proxy.
var proxyUnits = []string{"containerd", "crio", "k3s"}

// probeScript runs as root and prints key=value lines: everything Enable
// needs, in one SSH round trip. File contents are base64. It avoids
// `systemctl show --value` (systemd 230+) for the ADB box's CentOS 7.
const probeScript = `kv() { printf '%s=%s\n' "$1" "$2"; }
b64() { base64 <"$1" | tr -d '\n'; }
kv systemctl "$(command -v systemctl)"
if command -v systemctl >/dev/null 2>&1; then
	for u in @UNITS@; do
		systemctl show -p LoadState -p ActiveState -p UnitFileState "$u.service" 2>/dev/null | sed "s/^/unit.$u./"
	done
fi
if [ -f ` + kubeadmManifest + ` ]; then kv kubeadm 1; fi
kv port "$( (systemctl cat kube-apiserver.service 2>/dev/null; cat ` + kubeadmManifest + ` /etc/kubernetes/apiserver 2>/dev/null) | grep -o -- '--secure-port[= ][0-9]*' | head -n 1 | tr -dc 0-9)"
for f in ` + adminConf + ` ` + k3sYAML + ` ` + generatedConf + `; do
	if [ -f "$f" ]; then kv "file:$f" "$(b64 "$f")"; fi
done
for f in @CAFILES@; do
	if [ -f "$f" ]; then kv "exists:$f" 1; fi
done
kv openssl "$(command -v openssl)"
kv crictl "$(command -v crictl)"
for u in @PROXYUNITS@; do
	f=/etc/systemd/system/$u.service.d/` + proxyDropIn + `
	if [ -f "$f" ]; then kv "sha256:$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; fi
done
kv end 1
`

// unitState is one unit's systemctl show.
type unitState struct {
	Load, Active, FileState string
}

func (u unitState) loaded() bool { return u.Load == "loaded" }
func (u unitState) active() bool { return u.Active == "active" || u.Active == "reloading" }

// probe is what the guest reported.
type probe struct {
	Systemctl  bool
	Units      map[string]unitState
	Kubeadm    bool
	SecurePort int
	// Files are the admin kubeconfigs found, by guest path.
	Files   map[string][]byte
	Exists  map[string]bool
	OpenSSL bool
	Crictl  bool
	Sums    map[string]string
}

func probeCommand() string {
	var ca []string
	for _, p := range caPairs {
		ca = append(ca, p[0], p[1])
	}
	r := strings.NewReplacer("@UNITS@", strings.Join(probedUnits, " "),
		"@CAFILES@", strings.Join(ca, " "), "@PROXYUNITS@", strings.Join(proxyUnits, " "))
	return "sudo -n sh -c " + sshc.Quote(r.Replace(probeScript)) + " devbundle-kube-probe"
}

// readProbe runs the probe in the guest.
func readProbe(ctx context.Context, g services.Guest) (*probe, error) {
	var stdout, stderr bytes.Buffer
	code, err := g.Run(ctx, probeCommand(), sshc.RunOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("inspect the machine for kubernetes: %w", err)
	}
	p, err := parseProbe(stdout.Bytes())
	if err != nil || code != 0 {
		msg, _ := services.SudoHint(strings.TrimSpace(stderr.String()))
		if err == nil {
			err = fmt.Errorf("exit status %d", code)
		}
		return nil, fmt.Errorf("inspect the machine for kubernetes: %w: %s", err, msg)
	}
	return p, nil
}

// parseProbe parses the probe's output; it fails unless it is complete.
func parseProbe(out []byte) (*probe, error) {
	p := &probe{Units: map[string]unitState{}, Files: map[string][]byte{}, Exists: map[string]bool{}, Sums: map[string]string{}}
	err := services.ProbeLines(out, func(k, v string) error {
		switch {
		case k == "systemctl":
			p.Systemctl = v != ""
		case k == "kubeadm":
			p.Kubeadm = v == "1"
		case k == "port":
			if v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("probe output: port %q is not a number", v)
				}
				p.SecurePort = n
			}
		case k == "openssl":
			p.OpenSSL = v != ""
		case k == "crictl":
			p.Crictl = v != ""
		case strings.HasPrefix(k, "unit."):
			unit, field, _ := strings.Cut(strings.TrimPrefix(k, "unit."), ".")
			st := p.Units[unit]
			switch field {
			case "LoadState":
				st.Load = v
			case "ActiveState":
				st.Active = v
			case "UnitFileState":
				st.FileState = v
			}
			p.Units[unit] = st
		case strings.HasPrefix(k, "file:"):
			data, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("probe output: %s is not base64: %w", k, err)
			}
			p.Files[strings.TrimPrefix(k, "file:")] = data
		case strings.HasPrefix(k, "exists:"):
			p.Exists[strings.TrimPrefix(k, "exists:")] = v == "1"
		case strings.HasPrefix(k, "sha256:"):
			p.Sums[strings.TrimPrefix(k, "sha256:")] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *probe) loaded(unit string) bool { return p.Units[unit].loaded() }

// flavour says how the box runs Kubernetes, "" when it does not.
func (p *probe) flavour() Flavour {
	switch {
	case p.loaded("kube-apiserver"):
		return FlavourUnits
	case p.Kubeadm && p.loaded("kubelet"):
		return FlavourKubeadm
	case p.loaded("k3s"):
		return FlavourK3s
	}
	return ""
}

// runtimes are the container runtime units present, in start order.
func (p *probe) runtimes() []string {
	var out []string
	for _, u := range runtimeUnits {
		if p.loaded(u) {
			out = append(out, u)
		}
	}
	if len(out) == 0 && p.loaded("docker") {
		out = append(out, "docker")
	}
	return out
}

// startOrder is the units to start for flavour f, in order: the store,
// the runtime, then the control plane before the node.
func (p *probe) startOrder(f Flavour) []string {
	var want []string
	switch f {
	case FlavourUnits:
		want = append([]string{"etcd"}, p.runtimes()...)
		want = append(want, "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
	case FlavourKubeadm:
		want = append(p.runtimes(), "kubelet")
	case FlavourK3s:
		want = []string{"k3s"}
	}
	return slices.DeleteFunc(want, func(u string) bool { return !p.loaded(u) })
}

// stopOrder is the units to stop, in order: the node before the control
// plane, the store last. Container runtimes are left running: docker
// and other services may use them.
func (p *probe) stopOrder(f Flavour) []string {
	start := p.startOrder(f)
	out := slices.DeleteFunc(slices.Clone(start), func(u string) bool {
		return slices.Contains(runtimeUnits, u) || u == "docker"
	})
	slices.Reverse(out)
	return out
}

// mainUnit is the unit whose state is the service's.
func mainUnit(f Flavour) string {
	switch f {
	case FlavourUnits:
		return "kube-apiserver"
	case FlavourKubeadm:
		return "kubelet"
	case FlavourK3s:
		return "k3s"
	}
	return ""
}

// credentialFiles are the admin kubeconfigs for flavour f, best first.
func credentialFiles(f Flavour) []string {
	if f == FlavourK3s {
		return []string{k3sYAML, generatedConf}
	}
	return []string{adminConf, generatedConf}
}

// caPair is the first CA certificate and key pair the box has.
func (p *probe) caPair() (cert, key string, ok bool) {
	for _, pair := range caPairs {
		if p.Exists[pair[0]] && p.Exists[pair[1]] {
			return pair[0], pair[1], true
		}
	}
	return "", "", false
}
