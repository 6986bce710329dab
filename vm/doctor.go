package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/diskfree"
	"github.com/devbundle/devbundle/vm/virtualbox/vboxpath"
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

	out = append(out, checkVBoxManage(ctx, opts))
	return out
}

// checkVBoxManage reports the VBoxManage found and its version, or what
// to install. Missing is a failure only when VirtualBox is the provider.
func checkVBoxManage(ctx context.Context, opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "VBoxManage"}
	path, err := vboxpath.Find(vboxpath.FindOptions{Getenv: opts.Getenv})
	if err != nil {
		r.Status, r.Detail = CheckWarn, "not found"
		r.Fix = fmt.Sprintf("install VirtualBox 7 from %s to use --provider virtualbox, or set %s to the folder holding VBoxManage", vboxpath.DownloadURL, vboxpath.EnvInstallPath)
		if opts.Provider == "virtualbox" {
			r.Status = CheckFail
		}
		return r
	}
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := vboxpath.ReadVersion(vctx, path)
	if err != nil {
		r.Status, r.Detail = CheckWarn, fmt.Sprintf("%s does not tell its version: %v", path, err)
		r.Fix = "reinstall VirtualBox 7 from " + vboxpath.DownloadURL
		if opts.Provider == "virtualbox" {
			r.Status = CheckFail
		}
		return r
	}
	r.Status, r.Detail = CheckOK, fmt.Sprintf("%s (VirtualBox %s)", path, v)
	if !v.AtLeast(6, 1) {
		r.Status, r.Fix = CheckFail, "devbundle needs VirtualBox 6.1 or newer; install VirtualBox 7 from "+vboxpath.DownloadURL
		if opts.Provider != "virtualbox" {
			r.Status = CheckWarn
		}
	}
	if len(v.Warnings) > 0 {
		r.Detail += "; it warns: " + strings.Join(v.Warnings, " ")
		if r.Status == CheckOK {
			r.Status = CheckWarn
		}
		if r.Fix == "" {
			r.Fix = "follow VBoxManage's warning (on Linux: load the vboxdrv kernel module, e.g. sudo /sbin/vboxconfig)"
		}
	}
	return r
}
