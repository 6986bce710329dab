package boxes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedStore adds test/box versions from the registry: 1.0.0 and 1.2.0 for
// libvirt amd64, 1.0.0 for libvirt arm64, 2.0.0 for virtualbox.
func seedStore(t *testing.T) (*Store, *boxServer) {
	srv, _ := registry(t)
	store, _ := newStore(t)
	ctx := context.Background()
	for _, o := range []AddOptions{
		{Version: "1.0.0", Provider: "libvirt", Architecture: "amd64"},
		{Version: "1.2.0", Provider: "libvirt", Architecture: "amd64"},
		{Version: "1.0.0", Provider: "libvirt", Architecture: "arm64"},
		{Version: "2.0.0", Provider: "virtualbox", Architecture: "amd64"},
	} {
		o.Source, o.Server = "test/box", srv.URL()
		if _, err := store.Add(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return store, srv
}

func names(bs []Box) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.String())
	}
	return strings.Join(s, "|")
}

func TestRemove(t *testing.T) {
	store, _ := seedStore(t)
	ctx := context.Background()

	_, err := store.Remove(ctx, RemoveOptions{Name: "test/box"})
	if err == nil || !strings.Contains(err.Error(), "4 boxes match") || !strings.Contains(err.Error(), "--all") {
		t.Fatalf("ambiguous remove: err = %v", err)
	}
	_, err = store.Remove(ctx, RemoveOptions{Name: "other/box"})
	if err == nil || !strings.Contains(err.Error(), `box "other/box" is not installed`) {
		t.Fatalf("unknown box: err = %v", err)
	}
	_, err = store.Remove(ctx, RemoveOptions{Name: "test/box", Version: "9.9"})
	if err == nil || !strings.Contains(err.Error(), "installed: 2.0.0 (virtualbox, amd64)") {
		t.Fatalf("unknown version: err = %v", err)
	}

	inUse := func(b Box) ([]string, error) {
		if b.Version == "1.2.0" {
			return []string{"default"}, nil
		}
		return nil, nil
	}
	_, err = store.Remove(ctx, RemoveOptions{Name: "test/box", Version: "1.2.0", InUse: inUse})
	if err == nil || !strings.Contains(err.Error(), `is used by machine "default"`) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("in use: err = %v", err)
	}
	failing := func(Box) ([]string, error) { return nil, errors.New("machines folder unreadable") }
	if _, err := store.Remove(ctx, RemoveOptions{Name: "test/box", Version: "1.2.0", InUse: failing}); err == nil {
		t.Fatal("an InUse error was ignored")
	}

	removed, err := store.Remove(ctx, RemoveOptions{Name: "test/box", Version: "1.2.0", InUse: inUse, Force: true})
	if err != nil || names(removed) != "test/box 1.2.0 (libvirt, amd64)" {
		t.Fatalf("forced remove: %q, %v", names(removed), err)
	}
	if _, err := os.Stat(filepath.Join(store.Root(), "test-VAGRANTSLASH-box", "1.2.0")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("emptied version folder left behind: %v", err)
	}

	removed, err = store.Remove(ctx, RemoveOptions{Name: "test/box", Version: "1.0.0", All: true})
	if err != nil || len(removed) != 2 {
		t.Fatalf("remove --all of 1.0.0: %q, %v", names(removed), err)
	}
	list, _ := store.List()
	if names(list) != "test/box 2.0.0 (virtualbox, amd64)" {
		t.Fatalf("left = %q", names(list))
	}
	if _, err := store.Remove(ctx, RemoveOptions{Name: "test/box", Provider: "virtualbox"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(store.Root(), "test-VAGRANTSLASH-box")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("name folder left behind: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(store.Root(), ".tmp")); len(entries) != 0 {
		t.Fatalf(".tmp holds %v", entries)
	}
}

func TestPrune(t *testing.T) {
	store, srv := seedStore(t)
	ctx := context.Background()
	// A second name with two versions, one in use.
	data := libvirtBox(t, []byte("x"))
	url := srv.addFile("other.box", data)
	srv.setCatalog(&Catalog{Name: "other/box", Versions: []CatalogVersion{
		{Version: "0.1", Providers: []CatalogProvider{provider("libvirt", url, "amd64", data)}},
		{Version: "0.2", Providers: []CatalogProvider{provider("libvirt", url, "amd64", data)}},
		{Version: "0.3", Providers: []CatalogProvider{provider("libvirt", url, "amd64", data)}},
	}})
	for _, v := range []string{"0.1", "0.2", "0.3"} {
		if _, err := store.Add(ctx, AddOptions{Source: "other/box", Version: v, Server: srv.URL(), Architecture: "amd64"}); err != nil {
			t.Fatal(err)
		}
	}
	inUse := func(b Box) ([]string, error) {
		if b.Name == "other/box" && b.Version == "0.1" {
			return []string{"m1"}, nil
		}
		return nil, nil
	}
	dry, err := store.Prune(ctx, PruneOptions{DryRun: true, InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	want := "other/box 0.2 (libvirt, amd64)|test/box 1.0.0 (libvirt, amd64)"
	if names(dry) != want {
		t.Fatalf("dry run = %q, want %q", names(dry), want)
	}
	before, _ := store.List()
	if len(before) != 7 {
		t.Fatalf("dry run removed boxes: %d left", len(before))
	}
	removed, err := store.Prune(ctx, PruneOptions{InUse: inUse})
	if err != nil || names(removed) != want {
		t.Fatalf("prune = %q, %v", names(removed), err)
	}
	after, _ := store.List()
	wantLeft := "other/box 0.3 (libvirt, amd64)|other/box 0.1 (libvirt, amd64)|test/box 2.0.0 (virtualbox, amd64)|test/box 1.2.0 (libvirt, amd64)|test/box 1.0.0 (libvirt, arm64)"
	if names(after) != wantLeft {
		t.Fatalf("left = %q, want %q", names(after), wantLeft)
	}
}

func TestOutdated(t *testing.T) {
	srv, _ := registry(t)
	store, _ := newStore(t)
	ctx := context.Background()
	if _, err := store.Add(ctx, AddOptions{Source: "test/box", Version: "1.0.0", Provider: "libvirt", Architecture: "amd64", Server: srv.URL()}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Add(ctx, AddOptions{Source: "test/box", Provider: "virtualbox", Architecture: "amd64", Server: srv.URL()}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "local.box")
	os.WriteFile(p, virtualboxBox(t), 0o644)
	if _, err := store.Add(ctx, AddOptions{Source: p}); err != nil {
		t.Fatal(err)
	}
	reports, err := store.Outdated(ctx, OutdatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reports {
		got = append(got, fmt.Sprintf("%s latest=%s outdated=%v err=%v", r.Box, r.Latest, r.Outdated, r.Err != nil))
		if r.Box.Name == "local" && !errors.Is(r.Err, ErrNoCatalog) {
			t.Fatalf("local box err = %v", r.Err)
		}
	}
	want := []string{
		"local 0 (virtualbox, unknown) latest= outdated=false err=true",
		"test/box 2.0.0 (virtualbox, amd64) latest=2.0.0 outdated=false err=false",
		"test/box 1.0.0 (libvirt, amd64) latest=1.2.0 outdated=true err=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reports:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An unreachable catalog is reported per box.
	srv.srv.Close()
	reports, err = store.Outdated(ctx, OutdatedOptions{Name: "test/box"})
	if err != nil || len(reports) != 2 || reports[0].Err == nil || reports[1].Err == nil {
		t.Fatalf("closed server: %+v, %v", reports, err)
	}
}

func TestListIgnoresStrangers(t *testing.T) {
	store, root := newStore(t)
	for _, d := range []string{".tmp/x/1/amd64/libvirt", "not..valid/1/amd64/libvirt", "a/notaversion/amd64/libvirt", "a/1/amd64/libvirt"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	// a/1/amd64/libvirt has no metadata.json: an unfinished folder.
	list, err := store.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if list, err := NewStore(filepath.Join(root, "missing")).List(); err != nil || list != nil {
		t.Fatalf("missing store: %v, %v", list, err)
	}
}
