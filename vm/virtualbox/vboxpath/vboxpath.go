// Package vboxpath finds VirtualBox's command-line tool, VBoxManage, and
// reads its version. It imports nothing of devbundle, so both the
// VirtualBox provider and `devbundle doctor` use it.
package vboxpath

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Environment variables VirtualBox's installers set (Windows) or users set
// to point at an installation.
const (
	EnvInstallPath    = "VBOX_INSTALL_PATH"
	EnvMSIInstallPath = "VBOX_MSI_INSTALL_PATH"
)

// DownloadURL is where VirtualBox is installed from.
const DownloadURL = "https://www.virtualbox.org/wiki/Downloads"

// ErrNotFound is wrapped by Find's error when VBoxManage is nowhere.
var ErrNotFound = errors.New("VBoxManage not found")

// FindOptions say where Find looks. Zero fields take the real system's.
type FindOptions struct {
	// Getenv reads VBOX_INSTALL_PATH, VBOX_MSI_INSTALL_PATH and the
	// variables the usual install folders derive from (os.Getenv).
	Getenv func(string) string
	// LookPath searches PATH (exec.LookPath).
	LookPath func(string) (string, error)
	// InstallDirs are the usual install folders of this OS, searched after
	// the environment variables (the OS's own list, see installDirs).
	InstallDirs []string
}

// Find returns the path of VBoxManage: the folders in VBOX_INSTALL_PATH
// (a list separated by the OS's path list separator), then
// VBOX_MSI_INSTALL_PATH, then the usual install folders of the OS, then
// PATH. The error names every place searched and what to install.
func Find(opts FindOptions) (string, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.InstallDirs == nil {
		opts.InstallDirs = installDirs(opts.Getenv)
	}
	var dirs []string
	for _, env := range []string{EnvInstallPath, EnvMSIInstallPath} {
		for _, d := range filepath.SplitList(opts.Getenv(env)) {
			if d = strings.TrimSpace(d); d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	dirs = append(dirs, opts.InstallDirs...)
	for _, d := range dirs {
		p := filepath.Join(d, exeName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := opts.LookPath(exeName); err == nil {
		return p, nil
	}
	where := []string{EnvInstallPath, EnvMSIInstallPath}
	where = append(where, opts.InstallDirs...)
	return "", fmt.Errorf("%w (looked in %s and PATH): install VirtualBox 7 from %s, or set %s to the folder holding %s",
		ErrNotFound, strings.Join(where, ", "), DownloadURL, EnvInstallPath, exeName)
}

// Version is what `VBoxManage --version` prints: "7.0.14r161095".
type Version struct {
	Major, Minor, Patch int
	// Suffix is what follows the numbers ("_BETA1", "_Ubuntu", "r161095").
	Suffix string
	// Raw is the whole version line.
	Raw string
	// Warnings are the other lines VBoxManage printed (on Linux it warns
	// there when its kernel driver is not loaded).
	Warnings []string
}

func (v Version) String() string { return v.Raw }

// AtLeast tells whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

var versionLine = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(\S*)$`)

// ParseVersion reads the output of `VBoxManage --version`. The version is
// the last line that looks like one; other lines are kept as warnings.
func ParseVersion(out string) (Version, error) {
	var v Version
	found := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m := versionLine.FindStringSubmatch(line)
		if m == nil {
			v.Warnings = append(v.Warnings, line)
			continue
		}
		if found {
			v.Warnings = append(v.Warnings, v.Raw)
		}
		v.Major, _ = strconv.Atoi(m[1])
		v.Minor, _ = strconv.Atoi(m[2])
		v.Patch, _ = strconv.Atoi(m[3])
		v.Suffix, v.Raw = m[4], line
		found = true
	}
	if !found {
		return Version{}, fmt.Errorf("VBoxManage --version printed no version: %q", strings.TrimSpace(out))
	}
	return v, nil
}

// ReadVersion runs `<path> --version` and parses what it prints.
func ReadVersion(ctx context.Context, path string) (Version, error) {
	cmd := exec.CommandContext(ctx, path, "--version")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Version{}, fmt.Errorf("run %q --version: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		return Version{}, err
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		v.Warnings = append(v.Warnings, strings.Split(s, "\n")...)
	}
	return v, nil
}
