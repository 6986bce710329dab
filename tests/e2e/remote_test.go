//go:build e2e && linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devbundle/devbundle/tests/testbox"
)

const remoteMachine = "e2e-remote"

// TestUpRemoteLibvirt drives a machine on a "remote" libvirt host: a
// network namespace of the test's own with its own libvirtd and an
// OpenSSH sshd, joined to this host by a veth pair, reached with
// qemu+ssh://root@<its address>/system. QEMU binds the machine's forwards
// on that host's loopback, which this host cannot reach directly: SSH to
// the machine, docker's TLS check during up, and `devbundle tunnel` (for
// the user's docker CLI) all go through devbundle's SSH connection to the
// remote host.
func TestUpRemoteLibvirt(t *testing.T) {
	boxDir := testbox.Dir(t)
	cliPath := dockerCLI(t)
	ns := testbox.NewNamespace(t)
	_, nsIP := ns.Link(t)
	keyFile, knownHosts := startRemoteSSHD(t, ns, nsIP)

	c := newCLI(t, boxDir)
	uri := fmt.Sprintf("qemu+ssh://root@%s:22/system?socket=%s&keyfile=%s&known_hosts=%s", nsIP, ns.Socket(), keyFile, knownHosts)
	project := fmt.Sprintf("libvirt:\n  uri: %q\n", uri)
	if err := os.WriteFile(filepath.Join(c.home, "devbundle.yaml"), []byte(project), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.run(5*time.Minute, "-m", remoteMachine, "destroy", "--force") })
	m := []string{"-m", remoteMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.BoxName)
	c.must(20*time.Minute, append(m, "up", "--box", testbox.BoxName, "--memory", "1024", "--accel", "tcg", "--services", "docker")...)

	st := c.statusJSON(remoteMachine)
	if st["state"] != "running" || st["libvirt_host"] != "root@"+nsIP+":22" {
		t.Fatalf("status: %v", st)
	}
	r := c.must(time.Minute, append(m, "ssh", "--", "echo", "through-the-hop")...)
	if strings.TrimSpace(r.stdout) != "through-the-hop" {
		t.Errorf("ssh -- echo: %q", r.stdout)
	}

	// The docker forward is on the remote host's loopback, not this one's.
	mach, _ := dockerState(t, c, remoteMachine)
	fw, ok := mach.Forward("docker")
	if !ok || fw.HostPort == 0 {
		t.Fatalf("no docker forward: %+v", mach.Forwards)
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(fw.HostPort))
	if conn, err := net.DialTimeout("tcp", local, 2*time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s answers on this host without a tunnel: the test would prove nothing", local)
	}
	r = c.run(time.Minute, append(m, "env", "docker")...)
	if r.code != 126 || !strings.Contains(r.stderr, "devbundle tunnel") {
		t.Errorf("env without a tunnel: exit %d, stderr %q; want 126 and the tunnel hint", r.code, r.stderr)
	}

	// With the tunnel running, the user's docker CLI reaches dockerd.
	stopTunnel := startTunnel(t, c, remoteMachine)
	r = c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+remoteMachine+` env docker)" || exit 99
printf 'HOST=%s\n' "$DOCKER_HOST"
docker version --format 'SERVER={{.Server.Version}}' || exit 98`)
	if r.code != 0 || !strings.Contains(r.stdout, "HOST=tcp://"+local+"\n") || !strings.Contains(r.stdout, "SERVER=") {
		t.Errorf("docker through the tunnel: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	stopTunnel()

	c.must(5*time.Minute, append(m, "destroy", "--force")...)
	if st := c.statusJSON(remoteMachine); st["state"] != "not created" {
		t.Errorf("status after destroy: %v", st)
	}
}

// startRemoteSSHD runs OpenSSH's sshd inside the namespace on addr:22,
// letting root in with a fresh key. It returns that key's file and a
// known_hosts file holding the server's key.
func startRemoteSSHD(t *testing.T, ns *testbox.Namespace, addr string) (keyFile, knownHosts string) {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		if testbox.InCI() {
			t.Fatalf("sshd is not installed: %v", err)
		}
		t.Skipf("sshd is not installed: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"host_key", "client_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Join([]string{
		"ListenAddress " + addr + ":22",
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := ns.Exec(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// "ip netns exec" forks: stop sshd by its pid file.
		if data, err := os.ReadFile(filepath.Join(dir, "sshd.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Logf("remote sshd log:\n%s", indent(string(data)))
		}
	})
	waitFor(t, 15*time.Second, "the remote sshd to listen", func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	knownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(addr+" "+string(hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "client_key"), knownHosts
}

// startTunnel runs `devbundle tunnel` until the returned function stops it
// (with SIGINT, as Ctrl-C would) and checks how it ended.
func startTunnel(t *testing.T, c *cli, machine string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.command(ctx, "-m", machine, "tunnel")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "press Ctrl-C") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		cancel()
		_ = cmd.Wait()
		t.Fatalf("tunnel ended before it was ready:\n%s", strings.Join(lines, "\n"))
	case <-time.After(time.Minute):
		cancel()
		t.Fatalf("tunnel not ready within a minute:\n%s", strings.Join(lines, "\n"))
	}
	return func() {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGINT)
		waitErr := make(chan error, 1)
		go func() { waitErr <- cmd.Wait() }()
		select {
		case err := <-waitErr:
			<-done
			t.Logf("tunnel ended: %v\n%s", err, indent(strings.Join(lines, "\n")))
		case <-time.After(30 * time.Second):
			cancel()
			t.Errorf("tunnel did not stop within 30 s of SIGINT")
		}
	}
}
