//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/tests/testbox"
)

const upMachine = "e2e-up"

// TestUpLifecycle drives the whole machine lifecycle through the devbundle
// binary on real libvirt with the test box: an interrupted first `up` and
// a concurrent one, key replacement, ssh, box version, disk growth, `up` on
// a running machine, halt and up again, a tampered known_hosts, destroy
// leaving nothing behind.
func TestUpLifecycle(t *testing.T) {
	boxDir := testbox.Dir(t)
	lv := testbox.Connect(t)
	c := newCLI(t, boxDir)
	t.Cleanup(func() {
		// Never leave a VM behind, whatever failed.
		c.run(5*time.Minute, "-m", upMachine, "destroy", "--force")
	})

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.BoxName)
	boxGiB := boxVirtualGiB(t, boxDir)
	wantGiB := boxGiB + 2

	upArgs := []string{"-m", upMachine, "up", "--box", testbox.BoxName, "--cpus", "2", "--memory", "1024",
		"--disk", strconv.Itoa(wantGiB), "--services", ""}

	// 1. Interrupt the first up while the VM boots, as Ctrl-C would.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := c.command(ctx, upArgs...)
	var firstErr strings.Builder
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(c.home, "data", "machines", upMachine, "state.json")
	waitFor(t, 3*time.Minute, "the first up to create the VM", func() bool {
		data, err := os.ReadFile(stateFile)
		return err == nil && strings.Contains(string(data), `"phase": "created"`)
	})
	time.Sleep(2 * time.Second) // into the boot
	if err := first.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := first.Wait()
	t.Logf("interrupted up: %v\n%s", err, indent(firstErr.String()))
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 130 {
		t.Errorf("interrupted up: %v, want exit 130", err)
	}

	// 2. Two ups at once: one waits for the other; both end well.
	second := c.command(context.Background(), upArgs...)
	var secondErr strings.Builder
	second.Stderr = &secondErr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	third := c.run(10*time.Minute, upArgs...)
	if err := second.Wait(); err != nil {
		t.Fatalf("up after the interruption: %v\n%s", err, secondErr.String())
	}
	t.Logf("concurrent up:\n%s", indent(secondErr.String()))
	if third.code != 0 {
		t.Fatalf("second concurrent up: exit %d: %s", third.code, third.stderr)
	}
	if !strings.Contains(secondErr.String()+third.stderr, "waiting for another devbundle command") {
		t.Errorf("neither concurrent up said it waited for the other")
	}

	// 3. The machine runs; SSH works with the machine's own key.
	st := c.statusJSON(upMachine)
	if st["state"] != "running" {
		t.Fatalf("status: %v", st)
	}
	if r := c.must(time.Minute, "-m", upMachine, "ssh", "--", "echo", "hello"); strings.TrimSpace(r.stdout) != "hello" {
		t.Errorf("ssh -- echo hello printed %q", r.stdout)
	}
	if r := c.run(time.Minute, "-m", upMachine, "ssh", "--", "exit", "7"); r.code != 7 {
		t.Errorf("ssh -- exit 7: exit %d", r.code)
	}
	r := c.must(time.Minute, "-m", upMachine, "ssh", "--", "cat", ".ssh/authorized_keys")
	pub, err := os.ReadFile(filepath.Join(boxDir, testbox.PubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	insecureBlob := strings.Fields(string(pub))[1]
	if strings.Contains(r.stdout, insecureBlob) {
		t.Errorf("the box's insecure key is still authorized:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "devbundle machine "+upMachine) {
		t.Errorf("the machine key is not authorized:\n%s", r.stdout)
	}
	if r := c.must(time.Minute, "-m", upMachine, "box", "version", "--script-readable"); !strings.Contains(r.stdout, "VARIANT_ID=devbundle-testbox") {
		t.Errorf("box version: %q", r.stdout)
	}
	if r := c.must(time.Minute, "-m", upMachine, "ip", "--script-readable"); strings.TrimSpace(r.stdout) != "IP=127.0.0.1" {
		t.Errorf("ip: %q", r.stdout)
	}
	r = c.must(time.Minute, "-m", upMachine, "ssh", "--", "df", "--output=size", "-B1G", "/")
	if size := lastInt(t, r.stdout); size < wantGiB-1 {
		t.Errorf("root filesystem is %d GiB, want about %d (box: %d)", size, wantGiB, boxGiB)
	}

	// 4. up on a running machine skips the boot.
	if r := c.must(2*time.Minute, upArgs...); !strings.Contains(r.stderr, "already running") {
		t.Errorf("up on a running machine: %q", r.stderr)
	}

	// 5. halt, then up again: same machine, same pinned host key.
	c.must(3*time.Minute, "-m", upMachine, "halt")
	if st := c.statusJSON(upMachine); st["state"] != "halted" {
		t.Errorf("after halt: %v", st)
	}
	if r := c.run(time.Minute, "-m", upMachine, "ssh", "--", "true"); r.code != 3 {
		t.Errorf("ssh to a halted machine: exit %d, want 3", r.code)
	}
	c.must(10*time.Minute, upArgs...)
	c.must(time.Minute, "-m", upMachine, "ssh", "--", "true")

	// 6. A tampered known_hosts is refused.
	known := filepath.Join(c.home, "data", "machines", upMachine, "known_hosts")
	orig, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamperKnownHosts(t, orig, boxDir)
	if err := os.WriteFile(known, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.run(time.Minute, "-m", upMachine, "ssh", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "known_hosts") {
		t.Errorf("ssh with a tampered known_hosts: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := os.WriteFile(known, orig, 0o600); err != nil {
		t.Fatal(err)
	}

	// 7. destroy leaves no domain, volume or state.
	c.must(3*time.Minute, "-m", upMachine, "destroy", "--force")
	if _, err := lv.DomainLookupByName("devbundle-" + upMachine); err == nil {
		t.Errorf("domain devbundle-%s still defined after destroy", upMachine)
	}
	if vols := machineVolumes(t, lv, upMachine); len(vols) > 0 {
		t.Errorf("volumes left after destroy: %v", vols)
	}
	if _, err := os.Stat(filepath.Dir(stateFile)); !os.IsNotExist(err) {
		t.Errorf("machine folder left after destroy: %v", err)
	}
	if st := c.statusJSON(upMachine); st["state"] != "not created" {
		t.Errorf("status after destroy: %v", st)
	}

	// 8. Removing the box removes its uploaded copy from the pool.
	before := baseVolumes(t, lv)
	c.must(time.Minute, "box", "remove", testbox.BoxName)
	if after := baseVolumes(t, lv); len(after) >= len(before) {
		t.Errorf("box remove left the pool's base volumes as they were: %v", after)
	}
}

func baseVolumes(t *testing.T, lv *libvirt.Libvirt) []string {
	return poolVolumes(t, lv, "devbundle-base-")
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func boxVirtualGiB(t *testing.T, boxDir string) int {
	data, err := os.ReadFile(filepath.Join(boxDir, testbox.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		VirtualSize float64 `json:"virtual_size"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	if md.VirtualSize <= 0 {
		t.Fatalf("box metadata has no virtual_size: %s", data)
	}
	return int(md.VirtualSize + 0.999)
}

func lastInt(t *testing.T, s string) int {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		t.Fatalf("no number in %q", s)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(fields[len(fields)-1], "G"))
	if err != nil {
		t.Fatalf("no number in %q: %v", s, err)
	}
	return n
}

// tamperKnownHosts replaces each pinned key with a new key of the same
// type, as a VM impostor would present.
func tamperKnownHosts(t *testing.T, orig []byte, _ string) []byte {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(orig)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && !strings.HasPrefix(line, "#") {
			line = f[0] + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newHostKey(t, f[1]))))
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

func newHostKey(t *testing.T, typ string) ssh.PublicKey {
	var raw any
	var err error
	switch {
	case typ == ssh.KeyAlgoED25519:
		raw, _, err = ed25519.GenerateKey(rand.Reader)
	case strings.HasPrefix(typ, "ecdsa-sha2-nistp256"):
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err == nil {
			raw = &k.PublicKey
		}
	default:
		var k *rsa.PrivateKey
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			raw = &k.PublicKey
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func machineVolumes(t *testing.T, lv *libvirt.Libvirt, machine string) []string {
	return poolVolumes(t, lv, "devbundle-"+machine+"-")
}

// poolVolumes lists the volumes of devbundle's pool whose names start with
// prefix.
func poolVolumes(t *testing.T, lv *libvirt.Libvirt, prefix string) []string {
	pool, err := lv.StoragePoolLookupByName("devbundle")
	if err != nil {
		return nil
	}
	vols, _, err := lv.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vols {
		if strings.HasPrefix(v.Name, prefix) {
			out = append(out, v.Name)
		}
	}
	return out
}
