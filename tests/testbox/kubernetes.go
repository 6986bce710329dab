package testbox

import (
	"os"
	"testing"
)

// EnvK8sDir names the environment variable holding the folder of a built
// kubernetes test box (tests/box/cached.sh --kubernetes).
const EnvK8sDir = "DEVBUNDLE_TESTBOX_K8S_DIR"

// The kubernetes test box: the test box plus a single-node Kubernetes whose
// components are systemd units, not started at boot (tests/box/README.md).
const (
	// K8sBoxName is the name catalog.json gives the kubernetes box.
	K8sBoxName = "devbundle/devbox-kubernetes"
	// KubectlFile is the kubectl of the box's Kubernetes version, built for
	// the host, in the box folder.
	KubectlFile = "kubectl"
	// K8sMemoryMiB is the memory the kubernetes box needs (its Vagrantfile's).
	K8sMemoryMiB = 2560
	// K8sAdminKubeconfig is the guest's admin kubeconfig (root, 0600; server
	// https://127.0.0.1:6443, the cluster CA embedded), made the first time a
	// component starts.
	K8sAdminKubeconfig = "/etc/kubernetes/admin.conf"
	// K8sAPIPort is the guest port of the secure API (all addresses).
	K8sAPIPort = 6443
	// K8sHelloImage runs a shell that prints K8sHelloLine every 30 seconds.
	K8sHelloImage = "devbundle/hello"
	// K8sHelloLine is what the hello image prints.
	K8sHelloLine = "hello from devbundle"
)

// K8sUnits are the units of the cluster in the order they start (stop them
// in the reverse order).
var K8sUnits = []string{"etcd.service", "kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service", "kubelet.service"}

// K8sDir returns the folder of the built kubernetes test box named by
// DEVBUNDLE_TESTBOX_K8S_DIR after checking it holds every file of a build,
// kubectl included. Like Dir, it skips loudly, or fails when CI=true.
func K8sDir(t testing.TB) string {
	t.Helper()
	return k8sDir(t, InCI(), os.Getenv(EnvK8sDir))
}

func k8sDir(t tb, ci bool, dir string) string {
	t.Helper()
	return checkDir(t, ci, EnvK8sDir, dir, "--kubernetes", append(append([]string(nil), boxFiles...), KubectlFile))
}
