//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/services/kubernetes"
	"github.com/devbundle/devbundle/tests/testbox"
	"github.com/devbundle/devbundle/vm"
)

const k8sMachine = "e2e-kubernetes"

// helloPod runs the box's hello image, never pulled (no registry is
// reachable from the VM).
const helloPod = `apiVersion: v1
kind: Pod
metadata:
  name: hello
  namespace: devbundle-e2e
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: hello
    image: ` + testbox.K8sHelloImage + `
    imagePullPolicy: Never
`

// TestKubernetes drives the kubernetes service through the devbundle
// binary on real libvirt with the kubernetes test box, and the box's own
// kubectl (the server's version) against the real kube-apiserver and
// kubelet in the VM: `up --services kubernetes`, `env kubernetes` eval'd in
// bash, kubectl version / create namespace / get nodes (a Ready node) /
// logs of a pod of the box's hello image; `service restart kubernetes`;
// halt and up with the same kubeconfig still working.
func TestKubernetes(t *testing.T) {
	boxDir := testbox.K8sDir(t)
	testbox.Connect(t) // libvirtd must answer, or the tier is skipped/failed
	kubectl := filepath.Join(boxDir, testbox.KubectlFile)
	c := newCLI(t, boxDir)
	t.Cleanup(func() { c.run(5*time.Minute, "-m", k8sMachine, "destroy", "--force") })
	m := []string{"-m", k8sMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.K8sBoxName)
	upArgs := append(m, "up", "--box", testbox.K8sBoxName, "--services", "kubernetes",
		"--memory", "2560", "--cpus", "2")
	start := time.Now()
	r := c.must(30*time.Minute, upArgs...)
	t.Logf("up --services kubernetes: %s (first boot, control plane started, /readyz)", time.Since(start).Round(time.Second))
	if !strings.Contains(r.stderr, "Enabling kubernetes") {
		t.Errorf("up did not report the kubernetes step:\n%s", r.stderr)
	}

	mach, st := k8sState(t, c, k8sMachine)
	host, port, err := kubernetes.Endpoint(mach)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := net.JoinHostPort(host, strconv.Itoa(port))
	if st.Flavour != kubernetes.FlavourUnits || st.Endpoint != endpoint || st.GuestPort != testbox.K8sAPIPort || !strings.HasPrefix(st.Version, "v1.") {
		t.Fatalf("kubernetes state after up: %+v (endpoint %s)", st, endpoint)
	}
	kubeconfig := filepath.Join(c.home, "data", "machines", k8sMachine, "kubernetes", "kubeconfig")
	checkKubeconfig(t, kubeconfig, endpoint)
	firstKubeconfig, _ := os.ReadFile(kubeconfig)
	boxVersion, err := os.ReadFile(filepath.Join(boxDir, "VERSION"))
	if err == nil && strings.TrimSpace(string(boxVersion)) != st.Version {
		t.Errorf("server version %q, the box was built with %q", st.Version, strings.TrimSpace(string(boxVersion)))
	}

	// The user's path: eval the env output in bash, then kubectl.
	r = c.kubeBash(t, kubectl, 5*time.Minute, `eval "$(devbundle -m `+k8sMachine+` env kubernetes --shell bash)" || exit 99
printf 'KUBECONFIG=%s\n' "$KUBECONFIG"
kubectl version -o json || exit 98
kubectl create namespace devbundle-e2e || exit 97
kubectl get namespace devbundle-e2e -o name || exit 96`)
	if r.code != 0 {
		t.Fatalf("kubectl through env: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "KUBECONFIG="+kubeconfig+"\n") || !strings.Contains(r.stdout, "namespace/devbundle-e2e") {
		t.Errorf("kubectl through env:\n%s", r.stdout)
	}
	if got := serverGitVersion(t, r.stdout); got != st.Version {
		t.Errorf("kubectl version: server %q, state %q", got, st.Version)
	}

	// A Ready node once the kubelet has registered.
	var nodes string
	pollEvery(t, 10*time.Minute, 5*time.Second, "a Ready node", func() bool {
		r := c.kube(t, kubectl, kubeconfig, time.Minute, "get", "nodes", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		nodes = r.stdout
		return r.code == 0 && strings.Contains(r.stdout, "=True")
	})
	t.Logf("nodes: %s", strings.TrimSpace(nodes))

	// The hello pod runs the box's image and its log says hello. A new
	// namespace gets its default service account from the controller
	// manager a moment later; pods are refused until then.
	pollEvery(t, 5*time.Minute, 2*time.Second, "the namespace's default service account", func() bool {
		return c.kube(t, kubectl, kubeconfig, time.Minute, "-n", "devbundle-e2e", "get", "serviceaccount", "default", "-o", "name").code == 0
	})
	r = c.kubeStdin(t, kubectl, kubeconfig, time.Minute, helloPod, "apply", "-f", "-")
	if r.code != 0 {
		t.Fatalf("create the hello pod: exit %d: %s", r.code, r.stderr)
	}
	podStart := time.Now()
	pollEvery(t, 10*time.Minute, 5*time.Second, "the hello pod's log", func() bool {
		r := c.kube(t, kubectl, kubeconfig, time.Minute, "-n", "devbundle-e2e", "logs", "hello")
		return r.code == 0 && strings.Contains(r.stdout, testbox.K8sHelloLine)
	})
	t.Logf("hello pod: log after %s", time.Since(podStart).Round(time.Second))

	// service restart: the API server comes back and kubectl works.
	c.must(10*time.Minute, append(m, "service", "restart", "kubernetes")...)
	r = c.must(time.Minute, append(m, "service", "status", "kubernetes")...)
	if strings.TrimSpace(r.stdout) != "kubernetes - running" {
		t.Errorf("status after restart: %q", r.stdout)
	}
	checkReadyz(t, c, kubectl, kubeconfig)
	if r := c.kube(t, kubectl, kubeconfig, time.Minute, "get", "namespace", "devbundle-e2e", "-o", "name"); r.code != 0 {
		t.Errorf("kubectl after restart: exit %d: %s", r.code, r.stderr)
	}

	// stop: env refuses (126, nothing on stdout); start brings it back.
	c.must(5*time.Minute, append(m, "service", "stop", "kubernetes")...)
	r = c.run(time.Minute, append(m, "env", "kubernetes")...)
	if r.code != 126 || r.stdout != "" {
		t.Errorf("env with kubernetes stopped: exit %d, stdout %q; want 126 and nothing", r.code, r.stdout)
	}
	c.must(10*time.Minute, append(m, "service", "start", "kubernetes")...)
	checkReadyz(t, c, kubectl, kubeconfig)

	// install-cli: kubectl of the server's version, verified, cached.
	checkInstallCLIKubernetes(t, c, k8sMachine, kubectl, st.Version)

	// halt, then up: the same kubeconfig still works.
	c.must(5*time.Minute, append(m, "halt")...)
	start = time.Now()
	c.must(30*time.Minute, upArgs...)
	t.Logf("up after halt: %s", time.Since(start).Round(time.Second))
	checkReadyz(t, c, kubectl, kubeconfig)
	if again, _ := os.ReadFile(kubeconfig); !bytes.Equal(again, firstKubeconfig) {
		t.Errorf("halt and up rewrote the kubeconfig (the cluster's CA or credentials changed)")
	}
	if _, st2 := k8sState(t, c, k8sMachine); st2.CAFingerprint != st.CAFingerprint || st2.Version != st.Version {
		t.Errorf("state after halt and up: %+v, before %+v", st2, st)
	}
}

// k8sState reads the machine's state file and the kubernetes service's
// record in it.
func k8sState(t *testing.T, c *cli, machine string) (*vm.Machine, kubernetes.State) {
	t.Helper()
	return recordedState(t, c, machine, "kubernetes", kubernetes.ReadState)
}

// checkKubeconfig: 0600, the server is the forward, the CA embedded, no
// verification skipped, names that carry the machine's.
func checkKubeconfig(t *testing.T, path, endpoint string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s has mode %v, want 0600", path, info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	text := string(data)
	for _, want := range []string{"server: https://" + endpoint + "\n", "certificate-authority-data: ", "current-context: devbundle-" + k8sMachine + "\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("kubeconfig lacks %q", want)
		}
	}
	if strings.Contains(text, "insecure-skip-tls-verify") {
		t.Errorf("kubeconfig skips TLS verification")
	}
}

func checkReadyz(t *testing.T, c *cli, kubectl, kubeconfig string) {
	t.Helper()
	r := c.kube(t, kubectl, kubeconfig, time.Minute, "get", "--raw", "/readyz")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("kubectl get --raw /readyz: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
}

// serverGitVersion is serverVersion.gitVersion of `kubectl version -o
// json` output (the JSON object after any other lines).
func serverGitVersion(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, "{")
	if i < 0 {
		t.Fatalf("no JSON in kubectl version output: %q", out)
	}
	var v struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := json.NewDecoder(strings.NewReader(out[i:])).Decode(&v); err != nil {
		t.Fatalf("kubectl version -o json: %v: %q", err, out)
	}
	return v.ServerVersion.GitVersion
}

// kube runs kubectl with the given kubeconfig and nothing else from the
// environment's KUBECONFIG.
func (c *cli) kube(t *testing.T, kubectl, kubeconfig string, timeout time.Duration, args ...string) result {
	return c.kubeStdin(t, kubectl, kubeconfig, timeout, "", args...)
}

func (c *cli) kubeStdin(t *testing.T, kubectl, kubeconfig string, timeout time.Duration, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.exec(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = withoutKubeEnv(c.env, "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd, "kubectl "+strings.Join(args, " "))
}

// kubeBash runs a bash script with devbundle and the box's kubectl first
// on PATH and no KUBECONFIG of the caller's.
func (c *cli) kubeBash(t *testing.T, kubectl string, timeout time.Duration, script string) result {
	t.Helper()
	bin := t.TempDir()
	for name, target := range map[string]string{"devbundle": c.bin, "kubectl": kubectl} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.exec(ctx, "bash", "-c", script)
	cmd.Env = withoutKubeEnv(c.env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())
	return runCmd(t, cmd, "bash (kubectl)")
}

func withoutKubeEnv(env []string, extra ...string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	if !slicesHasPrefix(extra, "PATH=") {
		out = append(out, "PATH="+os.Getenv("PATH"))
	}
	return append(out, extra...)
}

func slicesHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func runCmd(t *testing.T, cmd *exec.Cmd, what string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: %v", what, err)
		}
		code = ee.ExitCode()
	}
	t.Logf("%s -> %d\n%s", what, code, indent(stderr.String()))
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// pollEvery calls ok every interval until it holds, failing the test
// after d.
func pollEvery(t *testing.T, d, interval time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(interval)
	}
}
