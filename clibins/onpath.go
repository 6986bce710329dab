package clibins

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// findOnPath looks for bin in the first PATH folder that has it (the one a
// shell would run) and reports whether its version is want. Only absolute
// PATH entries are considered: a relative one (".") depends on where the
// user happens to be.
func findOnPath(ctx context.Context, o *InstallOptions, bin, want string) (string, bool) {
	for _, dir := range filepath.SplitList(o.SearchPath) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		cand := filepath.Join(dir, bin)
		if !isExecutableFile(cand) {
			continue
		}
		got, err := probeClient(ctx, o, cand)
		if err != nil {
			o.log("%s on your PATH (%s) did not tell its version (%v); installing %s %s", o.Client.Name, cand, err, o.Client.Name, want)
			return "", false
		}
		if got != want {
			o.log("%s on your PATH (%s) is %s, not %s; installing %s %s", o.Client.Name, cand, got, want, o.Client.Name, want)
			return "", false
		}
		return cand, true
	}
	return "", false
}

// probeClient runs a client to read its own version (no server is
// contacted), within o.ProbeTimeout.
func probeClient(ctx context.Context, o *InstallOptions, bin string) (string, error) {
	timeout := o.ProbeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, probeArgs(o.Client.Name)...).Output()
	if ctx.Err() != nil {
		return "", fmt.Errorf("no answer within %s", timeout)
	}
	v, perr := parseClientVersion(o.Client.Name, out)
	if perr != nil && err != nil {
		return "", err
	}
	return v, perr
}
