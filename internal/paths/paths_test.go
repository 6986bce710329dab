package paths

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDevbundleHomeHoldsEverything(t *testing.T) {
	home := t.TempDir()
	p, err := New(func(k string) string {
		if k == "DEVBUNDLE_HOME" {
			return home
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{p.Data, p.Cache, p.Config, p.Boxes(), p.Machine("default"), p.Downloads(), p.Bin(), p.UserConfig()} {
		if !strings.HasPrefix(dir, home+string(filepath.Separator)) {
			t.Errorf("%q is outside DEVBUNDLE_HOME %q", dir, home)
		}
	}
	if p.Machine("dev") != filepath.Join(home, "data", "machines", "dev") {
		t.Errorf("machine folder: %q", p.Machine("dev"))
	}
}

func TestXDGDefault(t *testing.T) {
	p, err := New(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p.Data) != "devbundle" || filepath.Base(p.Cache) != "devbundle" {
		t.Errorf("unexpected default paths %+v", p)
	}
}
