//go:build e2e && linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/tests/testbox"
)

const netMachine = "e2e-net"

// TestUpNetworkMode runs the user's path in network mode: `devbundle up`
// on a libvirt network, the machine's address taken from its DHCP lease,
// SSH to that address, docker over TLS with a certificate for it, and
// `env docker` pointing the docker CLI at it. The libvirt network exists
// only inside a network namespace of the test's own, with a libvirtd of
// its own; devbundle and the docker CLI run inside that namespace, the
// only place that routes to the machine.
func TestUpNetworkMode(t *testing.T) {
	boxDir := testbox.Dir(t)
	cliPath := dockerCLI(t)
	ns := testbox.NewNamespace(t)
	ns.StartNetwork(t, ns.Connect(t), "dbtest")

	c := newCLI(t, boxDir)
	c.wrap = []string{"ip", "netns", "exec", ns.Name}
	project := fmt.Sprintf("libvirt:\n  uri: %q\n  network: network\n  network_name: dbtest\n", ns.URI())
	if err := os.WriteFile(filepath.Join(c.home, "devbundle.yaml"), []byte(project), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.run(5*time.Minute, "-m", netMachine, "destroy", "--force") })
	m := []string{"-m", netMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.BoxName)
	upArgs := append(m, "up", "--box", testbox.BoxName, "--memory", "1024", "--accel", "tcg", "--services", "docker")
	r := c.must(15*time.Minute, upArgs...)
	if !strings.Contains(r.stderr, "Waiting for the VM's address") {
		t.Errorf("up showed no address step:\n%s", r.stderr)
	}

	st := c.statusJSON(netMachine)
	addr, _ := st["address"].(string)
	if !strings.HasPrefix(addr, "192.168.150.") {
		t.Fatalf("status address %q is not on the namespace's network (status %v)", addr, st)
	}
	// The guest agrees, and SSH went to that address, not a forward.
	r = c.must(time.Minute, append(m, "ssh", "--", "ip", "-4", "-o", "addr", "show")...)
	if !strings.Contains(r.stdout, " "+addr+"/") {
		t.Errorf("the guest does not hold %s:\n%s", addr, r.stdout)
	}
	r = c.must(time.Minute, append(m, "ssh-config")...)
	if !strings.Contains(r.stdout, "HostName "+addr+"\n") || !strings.Contains(r.stdout, "Port 22\n") {
		t.Errorf("ssh-config does not point at %s:22:\n%s", addr, r.stdout)
	}
	r = c.must(time.Minute, append(m, "ip", "--script-readable")...)
	if strings.TrimSpace(r.stdout) != "IP="+addr {
		t.Errorf("ip --script-readable = %q, want IP=%s", r.stdout, addr)
	}

	// docker over TLS on the machine's own address.
	r = c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+netMachine+` env docker --shell bash)" || exit 99
printf 'HOST=%s\n' "$DOCKER_HOST"
docker version --format 'SERVER={{.Server.Version}}' || exit 98`)
	if r.code != 0 {
		t.Fatalf("docker through env: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "HOST=tcp://"+addr+":2376\n") || !strings.Contains(r.stdout, "SERVER=") {
		t.Errorf("docker through env:\n%s", r.stdout)
	}

	// Halt and up again: the address is looked up again (the MAC is the
	// machine's own, so the lease stays), and docker still answers.
	c.must(5*time.Minute, append(m, "halt")...)
	c.must(15*time.Minute, upArgs...)
	if again, _ := c.statusJSON(netMachine)["address"].(string); again != addr {
		t.Errorf("address after halt and up: %q, want %q", again, addr)
	}
	r = c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+netMachine+` env docker)" && docker version --format '{{.Server.Version}}'`)
	if r.code != 0 {
		t.Fatalf("docker after halt and up: exit %d: %s", r.code, r.stderr)
	}

	c.must(5*time.Minute, append(m, "destroy", "--force")...)
	if st := c.statusJSON(netMachine); st["state"] != "not created" {
		t.Errorf("status after destroy: %v", st)
	}
}
