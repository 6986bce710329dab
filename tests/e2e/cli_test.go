//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// devbundleBin is the devbundle binary built once for the tier.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// devbundle builds the binary (once) and returns its path.
func devbundle(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devbundle-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "devbundle")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/devbundle").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build devbundle: %v: %s", buildErr, binPath)
	}
	return binPath
}

// cli runs devbundle commands with a private DEVBUNDLE_HOME.
type cli struct {
	t    *testing.T
	bin  string
	home string
	env  []string
	// wrap, when set, runs every command under it (for example
	// "ip netns exec NS" to run inside a network namespace).
	wrap []string
}

type result struct {
	code           int
	stdout, stderr string
}

func newCLI(t *testing.T, boxDir string) *cli {
	home, err := os.MkdirTemp("", "devbundle-e2e-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	c := &cli{t: t, bin: devbundle(t), home: home}
	c.env = append(os.Environ(),
		"DEVBUNDLE_HOME="+home,
		"DEVBUNDLE_INSECURE_KEY_FILE="+filepath.Join(boxDir, "insecure_key"),
		"NO_COLOR=1",
	)
	// After the test's own clean-up (which destroys its machines): remove
	// the boxes it added, and so their uploaded copies in the libvirt
	// pool, which would outlive this private home otherwise.
	t.Cleanup(c.removeBoxes)
	return c
}

// removeBoxes removes every box in the CLI's store.
func (c *cli) removeBoxes() {
	out, err := c.command(context.Background(), "box", "list", "--json").Output()
	if err != nil {
		return
	}
	var list []struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(out, &list) != nil {
		return
	}
	seen := map[string]bool{}
	for _, b := range list {
		if b.Name == "" || seen[b.Name] {
			continue
		}
		seen[b.Name] = true
		if out, err := c.command(context.Background(), "box", "remove", b.Name, "--all").CombinedOutput(); err != nil {
			c.t.Logf("clean-up: box remove %s: %v\n%s", b.Name, err, out)
		}
	}
}

func (c *cli) command(ctx context.Context, args ...string) *exec.Cmd {
	return c.exec(ctx, c.bin, args...)
}

// exec runs name with the CLI's environment, folder and wrapper.
func (c *cli) exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	if len(c.wrap) > 0 {
		args = append(append(append([]string(nil), c.wrap[1:]...), name), args...)
		name = c.wrap[0]
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	cmd.Dir = c.home
	return cmd
}

// run runs devbundle and returns its exit code and output.
func (c *cli) run(timeout time.Duration, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			c.t.Fatalf("devbundle %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	c.t.Logf("devbundle %s -> %d\n%s", strings.Join(args, " "), code, indent(stderr.String()))
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// must runs devbundle and fails the test on a non-zero exit.
func (c *cli) must(timeout time.Duration, args ...string) result {
	c.t.Helper()
	r := c.run(timeout, args...)
	if r.code != 0 {
		c.t.Fatalf("devbundle %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func (c *cli) statusJSON(machine string) map[string]any {
	c.t.Helper()
	r := c.must(time.Minute, "-m", machine, "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		c.t.Fatalf("status --json: %v: %q", err, r.stdout)
	}
	return st
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
