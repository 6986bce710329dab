package vm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	s := Store{Root: t.TempDir()}
	m := &Machine{
		Name: "default", Provider: "libvirt", ID: "devbundle-default",
		Box:      BoxRef{Name: "devbundle/devbox", Version: "1.0.0", Architecture: "amd64", Provider: "libvirt"},
		Forwards: []Forward{{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40022}},
		SSH:      SSHInfo{User: "vagrant"},
	}
	if err := s.Save(m); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Box != m.Box || len(got.Forwards) != 1 || got.Forwards[0] != m.Forwards[0] {
		t.Errorf("round trip: %+v", got)
	}
	if f, ok := got.Forward("ssh"); !ok || f.HostPort != 40022 {
		t.Errorf("Forward(ssh) = %+v, %v", f, ok)
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(s.Dir("default"))
		if st.Mode().Perm() != 0o700 {
			t.Errorf("machine folder mode %v, want 0700", st.Mode().Perm())
		}
		st, _ = os.Stat(filepath.Join(s.Dir("default"), StateFile))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
		}
	}
	users, err := s.UsesBox("devbundle/devbox", "", "libvirt")
	if err != nil || len(users) != 1 || users[0] != "default" {
		t.Errorf("UsesBox = %v, %v", users, err)
	}
	if users, _ := s.UsesBox("other/box", "", ""); len(users) != 0 {
		t.Errorf("UsesBox(other) = %v", users)
	}
}

func TestLoadMissingAndDamaged(t *testing.T) {
	s := Store{Root: t.TempDir()}
	if _, err := s.Load("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing machine: %v", err)
	}
	dir, _ := s.Ensure("broken")
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Load("broken")
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "destroy") {
		t.Errorf("damaged state: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"default", "dev-1", "a.b_c"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", ".hidden", strings.Repeat("a", 64), "sp ace"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLockSerialises(t *testing.T) {
	s := Store{Root: t.TempDir()}
	unlock, err := s.Lock(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLock("default"); ok || err != nil {
		t.Fatalf("second lock taken while held: ok=%v err=%v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx, "default"); err == nil {
		t.Fatal("Lock returned while held")
	}
	unlock()
	u2, ok, err := s.TryLock("default")
	if !ok || err != nil {
		t.Fatalf("lock not free after unlock: %v", err)
	}
	u2()
}

func TestListSkipsFoldersWithoutState(t *testing.T) {
	s := Store{Root: t.TempDir()}
	if _, err := s.Ensure("empty"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b", "a"} {
		if err := s.Save(&Machine{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Errorf("List = %v", list)
	}
}

func TestLoadReachable(t *testing.T) {
	s := Store{Root: t.TempDir()}
	for _, m := range []*Machine{
		{Name: "fresh", Phase: PhaseCreated},
		{Name: "keyed", Phase: PhaseCreated, SSH: SSHInfo{KeyReplaced: true}},
		{Name: "ready", Phase: PhaseReady},
	} {
		if err := s.Save(m); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]int{"missing": 3, "fresh": 3, "keyed": 0, "ready": 0} {
		_, err := s.LoadReachable(name)
		if got := dberr.ExitCode(err); got != want {
			t.Errorf("%s: exit %d (%v), want %d", name, got, err, want)
		}
	}
}
