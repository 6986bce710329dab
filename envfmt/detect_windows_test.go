//go:build windows

package envfmt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcessAncestors reads the real process tree (only on Windows).
func TestProcessAncestors(t *testing.T) {
	names, err := processAncestors()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no ancestors found")
	}
	t.Logf("ancestors: %q (detected %s)", names, Detect(DetectOptions{}))
	self := strings.ToLower(filepath.Base(os.Args[0]))
	for _, n := range names {
		if strings.ToLower(n) == self {
			t.Errorf("the process itself is listed among its ancestors: %q", names)
		}
	}
}
