//go:build e2e && linux

package libvirt

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// qemu+ssh:// through go-libvirt's SSH dialer, against a private OpenSSH
// sshd on 127.0.0.1 in front of this host's own daemon: the connection,
// the host key check, an image upload streamed through the SSH channel,
// and what the provider tells about the tunnel forwards need.
func TestE2ERemoteSSH(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sshd and log in as root")
	}
	if _, err := exec.LookPath("sshd"); err != nil {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			t.Skip("sshd is not installed (apt-get install openssh-server)")
		}
	}
	dir := t.TempDir()
	keygen := func(name string) {
		t.Helper()
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", filepath.Join(dir, name))
	}
	keygen("host_key")
	keygen("client_key")
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeLocalPort(t)
	cfg := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"AllowStreamLocalForwarding yes",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation
		t.Fatal(err)
	}
	// sshd logs to a file: its per-connection children outlive it (the
	// provider's SSH connection lasts as long as this process, see
	// Provider.Close) and would hold a pipe open.
	logPath := filepath.Join(dir, "sshd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	sshd.Stdout, sshd.Stderr = logFile, logFile
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sshd.Process.Kill()
		_ = sshd.Wait()
	})
	sshdLog := func() string { data, _ := os.ReadFile(logPath); return string(data) }
	waitListening(t, port)

	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub)
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?keyfile=%s", port, filepath.Join(dir, "client_key"))

	// A host key we have no record of is refused, with what to do.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	empty := filepath.Join(dir, "empty_known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, Options{URI: uri, CacheDir: t.TempDir(), KnownHostsFile: empty})
	if err == nil || !strings.Contains(err.Error(), "known_hosts") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("unknown host key: %v", err)
	}

	p := e2eProvider(t, func(o *Options) { o.URI = uri; o.KnownHostsFile = known })
	hop, ok := p.Hop()
	if !ok || hop.User != "root" || hop.Addr != fmt.Sprintf("127.0.0.1:%d", port) || hop.KnownHostsFile != known {
		t.Fatalf("Hop() = %+v, %v", hop, ok)
	}
	if p.LibVersion() < 1_000_000 {
		t.Fatalf("LibVersion() = %d", p.LibVersion())
	}
	// A machine made over SSH: the image streams through the SSH channel.
	key := uniqueKey(t)
	cleanupBase(t, p, key)
	cleanupMachine(t, p, "e2e-remote")
	img := scratchImage(t, 64, 16)
	start := time.Now()
	c, err := p.Create(ctx, vm.Spec{Name: "e2e-remote", Dir: t.TempDir(), CPUs: 1, MemoryMiB: 256, Accel: "tcg",
		Disks:    []vm.Disk{{Path: img, Format: "qcow2", Key: key}},
		Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}}})
	if err != nil {
		t.Fatalf("Create over SSH: %v\nsshd: %s", err, sshdLog())
	}
	t.Logf("create over SSH (upload of %d bytes): %s", fileSize(t, img), time.Since(start).Round(time.Millisecond))
	m := &vm.Machine{Name: "e2e-remote", ID: c.ID}
	if st, err := p.State(ctx, m); err != nil || st != vm.StateHalted {
		t.Fatalf("State = %q, %v", st, err)
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Fatalf("Destroy over SSH: %v", err)
	}
	if st, _ := p.State(ctx, m); st != vm.StateNotCreated {
		t.Fatalf("State after Destroy = %q", st)
	}
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd never listened on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
