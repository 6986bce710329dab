package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/devbundle/devbundle/internal/diskfree"
)

// Check results.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// CheckResult is one line of `devbundle doctor`.
type CheckResult struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// DoctorOptions say what to check.
type DoctorOptions struct {
	Provider string // the configured provider
	DataDir  string // where boxes and machines live
	// ConnectProvider connects to a provider (the Manager's Provider).
	ConnectProvider func(ctx context.Context, name string) (Provider, error)
	Getenv          func(string) string
}

// Doctor checks the host: the hypervisor is reachable, hardware
// acceleration is usable, there is disk space, VBoxManage is found.
func Doctor(ctx context.Context, opts DoctorOptions) []CheckResult {
	var out []CheckResult

	if opts.Provider == "libvirt" || runtime.GOOS == "linux" {
		r := CheckResult{Name: "libvirt"}
		p, err := opts.ConnectProvider(ctx, "libvirt")
		if err != nil {
			r.Status, r.Detail = CheckFail, err.Error()
			if opts.Provider != "libvirt" {
				r.Status = CheckWarn
			}
		} else {
			r.Status, r.Detail = CheckOK, "libvirtd answers"
			if v, ok := p.(interface{ URI() string }); ok {
				r.Detail += " at " + v.URI()
			}
			_ = p.Close()
		}
		out = append(out, r)
	}

	out = append(out, checkAccel())

	r := CheckResult{Name: "disk space"}
	dir := opts.DataDir
	for dir != "" {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if free, err := diskfree.Bytes(dir); err != nil {
		r.Status, r.Detail = CheckWarn, fmt.Sprintf("cannot tell the free space of %q: %v", dir, err)
	} else {
		gib := float64(free) / (1 << 30)
		r.Detail = fmt.Sprintf("%.1f GiB free in %s", gib, dir)
		switch {
		case gib < 5:
			r.Status, r.Fix = CheckFail, "free some space: a box and a machine disk need several GiB (\"devbundle box prune\" removes old boxes)"
		case gib < 20:
			r.Status, r.Fix = CheckWarn, "space is tight for Kubernetes or OpenShift boxes; \"devbundle box prune\" removes old boxes"
		default:
			r.Status = CheckOK
		}
	}
	out = append(out, r)

	vb := CheckResult{Name: "VBoxManage"}
	if path, err := findVBoxManage(opts.Getenv); err == nil {
		vb.Status, vb.Detail = CheckOK, path
		if v, err := exec.CommandContext(ctx, path, "--version").Output(); err == nil {
			vb.Detail += " (VirtualBox " + strings.TrimSpace(string(v)) + ")"
		}
	} else {
		vb.Status, vb.Detail = CheckWarn, "not found"
		vb.Fix = "install VirtualBox to use --provider virtualbox (or set VBOX_INSTALL_PATH)"
		if opts.Provider == "virtualbox" {
			vb.Status = CheckFail
		}
	}
	out = append(out, vb)
	return out
}

// findVBoxManage looks where VirtualBox installs put VBoxManage.
func findVBoxManage(getenv func(string) string) (string, error) {
	name := "VBoxManage"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	var dirs []string
	for _, env := range []string{"VBOX_INSTALL_PATH", "VBOX_MSI_INSTALL_PATH"} {
		for _, d := range filepath.SplitList(getenv(env)) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	switch runtime.GOOS {
	case "windows":
		dirs = append(dirs, `C:\Program Files\Oracle\VirtualBox`)
	case "darwin":
		dirs = append(dirs, "/Applications/VirtualBox.app/Contents/MacOS", "/usr/local/bin")
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
