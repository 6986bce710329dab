package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm/sshc"
)

// installHint is said when docker cannot be installed.
const installHint = "give the machine a way to its package repositories (a proxy: \"proxy:\" in devbundle.yaml), or use a box with docker"

// Install scripts by package manager. $1 is "1" when the kernel has
// AppArmor on (dockerd then needs apparmor_parser to run containers).
// apt-get: no recommends (git, needrestart...), but ca-certificates for
// pulls over HTTPS.
const (
	aptInstall = `export DEBIAN_FRONTEND=noninteractive
log=$(apt-get -q -o Acquire::Retries=2 -o Acquire::http::Timeout=30 update 2>&1); rc=$?
if ! apt-cache show docker.io >/dev/null 2>&1; then
	printf '%s\n' "$log" | grep -E '^(E|W): ' >&2
	if [ "$rc" -ne 0 ] || printf '%s\n' "$log" | grep -q '^W: Failed to fetch'; then exit 10; fi
fi
pkgs="docker.io ca-certificates"
if [ "$1" = 1 ]; then pkgs="$pkgs apparmor"; fi
apt-get -q -y -o Acquire::Retries=2 -o Acquire::http::Timeout=30 install --no-install-recommends $pkgs || exit 11`
	dnfInstall = `dnf -y install moby-engine || dnf -y install docker || exit 11`
	yumInstall = `yum -y install docker || exit 11`
)

// installCommand returns the script that installs docker with the guest's
// package manager.
func installCommand(pm string) (string, error) {
	switch pm {
	case "apt-get":
		return aptInstall, nil
	case "dnf":
		return dnfInstall, nil
	case "yum":
		return yumInstall, nil
	}
	return "", dberr.WithHint(
		errors.New("docker is not installed in the machine, and it has no package manager devbundle knows (apt-get, dnf, yum)"),
		"use a box with docker")
}

// proxyEnv returns the env(1) assignments that pass the proxy to a
// package manager.
func proxyEnv(proxy string) []string {
	if proxy == "" {
		return nil
	}
	var out []string
	for _, k := range []string{"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"} {
		out = append(out, k+"="+proxy)
	}
	return out
}

// install puts docker into a machine that lacks it, with the box's package
// manager; an rpm-ostree machine is never touched (its /usr is read-only
// and docker is part of the image).
func install(ctx context.Context, sc services.Context, p *probe, logf func(string, ...any)) error {
	if p.OSTree {
		return dberr.WithHint(
			errors.New("docker is not installed in the machine, an rpm-ostree system whose /usr is read-only (devbundle does not run dnf there)"),
			`layer it into the image and reboot: "devbundle ssh -- sudo rpm-ostree install docker", then "devbundle halt" and "devbundle up"`)
	}
	script, err := installCommand(p.PackageManager)
	if err != nil {
		return err
	}
	logf("docker: dockerd is missing; installing it with %s", p.PackageManager)
	apparmor := "0"
	if p.AppArmor {
		apparmor = "1"
	}
	// sudo -n env VAR=... sh -c SCRIPT: the proxy reaches the package
	// manager whatever sudo's env_reset says.
	cmd := "sudo -n env"
	for _, a := range proxyEnv(sc.Proxy) {
		cmd += " " + sshc.Quote(a)
	}
	cmd += " sh -c " + sshc.Quote(script) + " devbundle " + apparmor
	var stdout, stderr strings.Builder
	code, err := sc.Guest.Run(ctx, cmd, runOpts(&stdout, &stderr))
	if err != nil {
		return fmt.Errorf("install docker in the machine with %s: %w", p.PackageManager, err)
	}
	if code == 0 {
		return nil
	}
	out := keyLine(stderr.String())
	if out == "" {
		out = keyLine(stdout.String())
	}
	what := "install docker"
	if code == 10 {
		what = "reach the package repositories"
	}
	return dberr.WithHint(
		fmt.Errorf("docker is not installed in the machine, and %s could not %s (exit status %d): %s", p.PackageManager, what, code, tail(out, 400)),
		installHint)
}

// keyLine picks the line of a package manager's output that says what
// went wrong: the first error line (apt's "E: ...", dnf's "Error: ...",
// yum's "No package ..."), else the first warning ("W: ..."), else the
// last line.
func keyLine(out string) string {
	var warning, last string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		for _, prefix := range []string{"E: ", "Error: ", "No package ", "No match for argument"} {
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		if warning == "" && strings.HasPrefix(line, "W: ") {
			warning = line
		}
		last = line
	}
	if warning != "" {
		return warning
	}
	return last
}
