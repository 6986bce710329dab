package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/vm/sshc"
)

// TestProbeScriptRunsInRealShells runs the probe script (without sudo)
// in the POSIX shells at hand and parses what it prints: the script is
// valid in each and its output complete, whatever this host has.
func TestProbeScriptRunsInRealShells(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX shell")
	}
	cmd := probeCommand()
	// The script is the part between "sudo -n sh -c " and the probe's name.
	script := strings.Replace(probeScript, "@FILES@", "/nonexistent/a "+sshc.Quote(filepath.Join(t.TempDir(), "it's here")), 1)
	if !strings.HasPrefix(cmd, "sudo -n sh -c ") || !strings.Contains(cmd, sshc.Quote(GuestKey)) {
		t.Fatalf("probe command %q", cmd)
	}
	ran := 0
	for _, sh := range []string{"sh", "dash", "bash", "busybox"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		ran++
		args := []string{"-c", script, "devbundle-probe", "someone"}
		if sh == "busybox" {
			args = append([]string{"sh"}, args...)
		}
		out, err := exec.Command(path, args...).Output()
		if err != nil {
			t.Errorf("%s: %v", sh, err)
			continue
		}
		p, err := parseProbe(out)
		if err != nil {
			t.Errorf("%s: %v\n%s", sh, err, out)
			continue
		}
		host, _ := os.Hostname()
		if p.Hostname != host || p.User != "someone" {
			t.Errorf("%s: hostname %q user %q, want %q someone", sh, p.Hostname, p.User, host)
		}
		if len(p.Sums) != 0 {
			t.Errorf("%s: sums of files that do not exist: %v", sh, p.Sums)
		}
	}
	if ran == 0 {
		t.Skip("no POSIX shell found")
	}
}

func TestProbeScriptReportsFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX shell")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(f, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := strings.Replace(probeScript, "@FILES@", sshc.Quote(f), 1)
	out, err := exec.Command("sh", "-c", script, "devbundle-probe", "u").Output()
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseProbe(out)
	if err != nil {
		t.Fatal(err)
	}
	// sha256("hello\n")
	if got := p.Sums[f]; got != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" {
		t.Errorf("sum %q", got)
	}
}

func TestParseProbe(t *testing.T) {
	out := strings.Join([]string{
		"hostname=devbox",
		"user=vagrant",
		"groups=vagrant sudo docker",
		"systemctl=/usr/bin/systemctl",
		"dockerd=/usr/sbin/dockerd",
		"ostree=0",
		"pm=apt-get",
		"apparmor=Y",
		"LoadState=loaded",
		"ActiveState=active",
		"UnitFileState=enabled",
		"unit=" + b64("# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/sbin/dockerd\n"),
		"daemonjson=" + b64(`{"debug": true}`),
		"restartpending=1",
		"sha256:/etc/docker/devbundle/ca.pem=abc",
		"noise without equals",
		"end=1",
	}, "\n")
	p, err := parseProbe([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hostname != "devbox" || p.User != "vagrant" || !slices.Contains(p.Groups, "docker") || !p.Systemctl ||
		p.Dockerd != "/usr/sbin/dockerd" || p.OSTree || p.PackageManager != "apt-get" || !p.AppArmor ||
		p.LoadState != "loaded" || p.ActiveState != "active" || p.UnitFileState != "enabled" ||
		!strings.Contains(p.Unit, "ExecStart=/usr/sbin/dockerd") || string(p.DaemonJSON) != `{"debug": true}` ||
		!p.RestartPending || p.Sums["/etc/docker/devbundle/ca.pem"] != "abc" || !p.hasDocker() {
		t.Errorf("parsed %+v", p)
	}
	if _, err := parseProbe([]byte("hostname=devbox\n")); err == nil {
		t.Errorf("output without the end line accepted")
	}
	if _, err := parseProbe([]byte("unit=!!!\nend=1\n")); err == nil {
		t.Errorf("bad base64 accepted")
	}
	p, _ = parseProbe([]byte("dockerd=\nLoadState=not-found\nend=1\n"))
	if p.hasDocker() {
		t.Errorf("no dockerd, no unit: hasDocker")
	}
}
