package boxes

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/archive"
	"github.com/devbundle/devbundle/internal/download"
)

// registry serves test/box with versions 1.0.0 and 1.2.0 for libvirt on
// amd64 and arm64, and 2.0.0 for virtualbox only.
func registry(t *testing.T) (*boxServer, map[string][]byte) {
	s := newBoxServer(t, false)
	images := map[string][]byte{}
	cat := &Catalog{Name: "test/box"}
	for i, v := range []string{"1.0.0", "1.2.0"} {
		var ps []CatalogProvider
		for j, arch := range []string{"amd64", "arm64"} {
			img := randomBytes(64<<10, uint64(10*i+j))
			data := libvirtBox(t, img)
			images[v+"/"+arch] = img
			url := s.addFile(fmt.Sprintf("box-%s-%s.box", v, arch), data)
			ps = append(ps, provider("libvirt", url, arch, data))
		}
		cat.Versions = append(cat.Versions, CatalogVersion{Version: v, Providers: ps})
	}
	vb := virtualboxBox(t)
	cat.Versions = append(cat.Versions, CatalogVersion{Version: "2.0.0", Providers: []CatalogProvider{
		provider("virtualbox", s.addFile("vb.box", vb), "amd64", vb),
	}})
	s.setCatalog(cat)
	return s, images
}

func TestAddFromCatalogThenList(t *testing.T) {
	srv, images := registry(t)
	store, _ := newStore(t)
	ctx := context.Background()

	box, err := store.Add(ctx, AddOptions{Source: "test/box", Provider: "libvirt", Architecture: "amd64", Server: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if box.Name != "test/box" || box.Version != "1.2.0" || box.Provider != "libvirt" || box.Architecture != "amd64" {
		t.Fatalf("added %s, want test/box 1.2.0 (libvirt, amd64)", box)
	}
	wantDir := filepath.Join(store.Root(), "test-VAGRANTSLASH-box", "1.2.0", "amd64", "libvirt")
	if box.Dir != wantDir {
		t.Fatalf("dir = %q, want %q", box.Dir, wantDir)
	}
	img, err := os.ReadFile(filepath.Join(box.Dir, "box.img"))
	if err != nil || !bytes.Equal(img, images["1.2.0/amd64"]) {
		t.Fatalf("box.img differs from the served image (%v)", err)
	}

	// An older version through a constraint, the other architecture.
	if _, err := store.Add(ctx, AddOptions{Source: "test/box", Version: "< 1.2", Provider: "libvirt", Architecture: "arm64", Server: srv.URL()}); err != nil {
		t.Fatal(err)
	}

	list, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range list {
		got = append(got, b.String())
	}
	want := []string{"test/box 1.2.0 (libvirt, amd64)", "test/box 1.0.0 (libvirt, arm64)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("list = %q, want %q", got, want)
	}
	b := list[0]
	if b.Source.CatalogURL != srv.URL()+"/api/v2/vagrant/test/box" || !b.Source.Verified ||
		!strings.HasPrefix(b.Source.Checksum, "sha256:") || b.Source.AddedAt.IsZero() || b.Source.Size == 0 {
		t.Fatalf("source record = %+v", b.Source)
	}
	if b.Metadata.Provider != "libvirt" || b.Metadata.Format != "qcow2" || b.Metadata.VirtualSizeGB != 10 {
		t.Fatalf("metadata = %+v", b.Metadata)
	}
	images2, err := b.Images()
	if err != nil || len(images2) != 1 || images2[0] != filepath.Join(b.Dir, "box.img") {
		t.Fatalf("images = %q, %v", images2, err)
	}
	// The record on disk is JSON naming the same things.
	raw, err := os.ReadFile(filepath.Join(b.Dir, SourceFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil || rec["catalog_url"] != b.Source.CatalogURL {
		t.Fatalf("source file = %s (%v)", raw, err)
	}
	// Nothing is left in the temporary or download folders.
	for _, dir := range []string{".tmp", ".downloads"} {
		entries, _ := os.ReadDir(filepath.Join(store.Root(), dir))
		if len(entries) != 0 {
			t.Fatalf("%s holds %v after success", dir, entries)
		}
	}

	// Adding it again is refused; --force replaces it.
	_, err = store.Add(ctx, AddOptions{Source: "test/box", Provider: "libvirt", Architecture: "amd64", Server: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), "already installed; pass --force") {
		t.Fatalf("second add: err = %v", err)
	}
	if _, err := store.Add(ctx, AddOptions{Source: "test/box", Provider: "libvirt", Architecture: "amd64", Server: srv.URL(), Force: true}); err != nil {
		t.Fatalf("forced add: %v", err)
	}
}

func TestAddResumesAfterCutConnection(t *testing.T) {
	srv := newBoxServer(t, false)
	img := randomBytes(3<<20, 7) // incompressible: the .box is over 3 MiB
	data := libvirtBox(t, img)
	url := srv.addFile("big.box", data)
	srv.cutAt = len(data) / 2
	srv.cutNext.Store(1)
	sum := download.Checksum{Type: "sha256", Hex: sha256Hex(data)}

	store, root := newStore(t)
	dl := filepath.Join(t.TempDir(), "downloads")
	opts := AddOptions{Source: url, Name: "big/box", Checksum: sum, DownloadDir: dl, MaxAttempts: 1}
	_, err := store.Add(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("cut download: err = %v", err)
	}
	assertNoBoxes(t, root)
	partials, _ := filepath.Glob(filepath.Join(dl, "*.partial"))
	if len(partials) != 1 {
		t.Fatalf("partial downloads = %q, want one", partials)
	}
	if fi, _ := os.Stat(partials[0]); fi == nil || fi.Size() != int64(srv.cutAt) {
		t.Fatalf("partial file = %v, want %d bytes", fi, srv.cutAt)
	}

	box, err := store.Add(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ranges := srv.seenRanges()
	if len(ranges) != 2 || ranges[1] != fmt.Sprintf("bytes=%d-", srv.cutAt) {
		t.Fatalf("Range headers = %q, want the second request to resume at %d", ranges, srv.cutAt)
	}
	got, err := os.ReadFile(filepath.Join(box.Dir, "box.img"))
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("resumed box.img differs (%d bytes, %v)", len(got), err)
	}
	if box.Source.Checksum != sum.String() || !box.Source.Verified || box.Source.Size != int64(len(data)) {
		t.Fatalf("source = %+v", box.Source)
	}
	if partials, _ := filepath.Glob(filepath.Join(dl, "*")); len(partials) != 0 {
		t.Fatalf("download folder not emptied: %q", partials)
	}
}

func TestAddReconnectsWithinOneRun(t *testing.T) {
	srv := newBoxServer(t, false)
	img := randomBytes(2<<20, 8)
	data := libvirtBox(t, img)
	url := srv.addFile("big.box", data)
	srv.cutAt = len(data) / 3
	srv.cutNext.Store(1)
	store, _ := newStore(t)
	box, err := store.Add(context.Background(), AddOptions{
		Source: url, Name: "big/box", Checksum: download.Checksum{Type: "sha256", Hex: sha256Hex(data)}, RetryDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.seenRanges(); len(r) != 2 || r[1] != fmt.Sprintf("bytes=%d-", srv.cutAt) {
		t.Fatalf("ranges = %q", r)
	}
	if got, _ := os.ReadFile(filepath.Join(box.Dir, "box.img")); !bytes.Equal(got, img) {
		t.Fatal("box.img differs")
	}
}

func TestAddWrongChecksumLeavesNothing(t *testing.T) {
	srv := newBoxServer(t, false)
	data := libvirtBox(t, randomBytes(300<<10, 9))
	tampered := libvirtBox(t, randomBytes(300<<10, 10)) // a different, valid box
	srv.setCatalog(&Catalog{Name: "test/box", Versions: []CatalogVersion{{Version: "1.0.0", Providers: []CatalogProvider{
		provider("libvirt", srv.addFile("x.box", tampered), "amd64", data), // checksum of the genuine box
	}}}})
	store, root := newStore(t)
	dl := filepath.Join(t.TempDir(), "dl")
	_, err := store.Add(context.Background(), AddOptions{Source: "test/box", Server: srv.URL(), Architecture: "amd64", DownloadDir: dl})
	var ce *download.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a checksum mismatch", err)
	}
	if strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("message = %q", err)
	}
	assertNoBoxes(t, root)
	if left := tree(t, dl); len(left) != 0 {
		t.Fatalf("download folder holds %q after a mismatch", left)
	}
	if list, _ := store.List(); len(list) != 0 {
		t.Fatalf("list = %v", list)
	}

	// A local file with a wrong --checksum: the same.
	p := filepath.Join(t.TempDir(), "local.box")
	if err := os.WriteFile(p, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = store.Add(context.Background(), AddOptions{Source: p, Checksum: download.Checksum{Type: "sha256", Hex: sha256Hex(data)}})
	if !errors.As(err, &ce) {
		t.Fatalf("local file: err = %v", err)
	}
	assertNoBoxes(t, root)
}

func TestAddRefusesUnsafeArchives(t *testing.T) {
	meta := file("metadata.json", `{"provider":"libvirt"}`)
	img := file("box.img", "qcow")
	tests := []struct {
		name    string
		entries []tarEntry
		entry   string
	}{
		{"dotdot", []tarEntry{meta, img, file("../escaped", "evil")}, "../escaped"},
		{"absolute", []tarEntry{meta, img, file("/tmp/devbundle-escaped", "evil")}, "/tmp/devbundle-escaped"},
		{"escaping symlink", []tarEntry{meta, img, {name: "link", typ: tar.TypeSymlink, link: "../../../../etc"}}, "link"},
		{"device", []tarEntry{meta, img, {name: "dev", typ: tar.TypeChar}}, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newBoxServer(t, false)
			data := makeBox(t, tt.entries...)
			url := srv.addFile("evil.box", data)
			base := t.TempDir()
			store := NewStore(filepath.Join(base, "boxes"))
			dl := filepath.Join(base, "dl")
			_, err := store.Add(context.Background(), AddOptions{
				Source: url, Name: "evil/box", DownloadDir: dl,
				Checksum: download.Checksum{Type: "sha256", Hex: sha256Hex(data)},
			})
			var ue *archive.UnsafeEntryError
			if !errors.As(err, &ue) || ue.Entry != tt.entry {
				t.Fatalf("err = %v, want a refusal of %q", err, tt.entry)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("refusing archive entry %q", tt.entry)) || strings.Contains(err.Error(), "unpack:") {
				t.Fatalf("message %q does not name the entry", err)
			}
			assertNoBoxes(t, store.Root())
			// Nothing escaped next to the store either, and the refused
			// download is not kept for a resume.
			for _, p := range tree(t, base) {
				if !strings.HasPrefix(p, "boxes/") && p != "dl/" {
					t.Fatalf("found %q beside the store", p)
				}
			}
			if _, err := os.Stat("/tmp/devbundle-escaped"); err == nil {
				t.Fatal("/tmp/devbundle-escaped was written")
			}
		})
	}
}

func TestAddHTTPErrors(t *testing.T) {
	srv, _ := registry(t)
	store, root := newStore(t)
	ctx := context.Background()

	_, err := store.Add(ctx, AddOptions{Source: "nobody/nothing", Server: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") || !strings.Contains(err.Error(), srv.URL()+"/api/v2/vagrant/nobody/nothing") ||
		!strings.Contains(err.Error(), "--box-server") {
		t.Fatalf("missing catalog: err = %v", err)
	}

	_, err = store.Add(ctx, AddOptions{Source: srv.URL() + "/files/missing.box", Checksum: download.Checksum{Type: "md5", Hex: strings.Repeat("0", 32)}})
	var se *download.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(err.Error(), "/files/missing.box") {
		t.Fatalf("missing box: err = %v", err)
	}

	srv.failFiles.Store(500)
	_, err = store.Add(ctx, AddOptions{Source: "test/box", Provider: "libvirt", Architecture: "amd64", Server: srv.URL(), MaxAttempts: 2, RetryDelay: time.Millisecond})
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "500 Internal Server Error") {
		t.Fatalf("server failure: err = %v", err)
	}
	assertNoBoxes(t, root)
}

func TestAddFollowsRedirects(t *testing.T) {
	srv := newBoxServer(t, false)
	data := libvirtBox(t, []byte("image"))
	srv.addFile("real.box", data)
	srv.setCatalog(&Catalog{Name: "test/box", Versions: []CatalogVersion{{Version: "3.1.4", Providers: []CatalogProvider{
		provider("libvirt", srv.URL()+"/redirect/real.box", "", data),
	}}}})
	store, _ := newStore(t)
	box, err := store.Add(context.Background(), AddOptions{Source: "test/box", Server: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if box.Version != "3.1.4" || box.Architecture != ArchUnknown {
		t.Fatalf("box = %s", box)
	}
}

func TestAddCatalogWithoutMatch(t *testing.T) {
	srv, _ := registry(t)
	store, root := newStore(t)
	ctx := context.Background()
	_, err := store.Add(ctx, AddOptions{Source: "test/box", Provider: "vmware_desktop", Server: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), `no provider "vmware_desktop"`) ||
		!strings.Contains(err.Error(), "1.2.0: libvirt (amd64), libvirt (arm64)") ||
		!strings.Contains(err.Error(), "2.0.0: virtualbox (amd64)") {
		t.Fatalf("no provider: err = %v", err)
	}
	_, err = store.Add(ctx, AddOptions{Source: "test/box", Provider: "libvirt", Architecture: "riscv64", Server: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), `architecture "riscv64"`) || !strings.Contains(err.Error(), "libvirt (arm64)") {
		t.Fatalf("no architecture: err = %v", err)
	}
	_, err = store.Add(ctx, AddOptions{Source: "test/box", Version: ">= 9", Server: srv.URL()})
	if err == nil || !strings.Contains(err.Error(), `no version matching ">= 9"; available: 2.0.0, 1.2.0, 1.0.0`) {
		t.Fatalf("no version: err = %v", err)
	}
	assertNoBoxes(t, root)
}

func TestAddPolicyWithoutChecksum(t *testing.T) {
	// Plain HTTP, no checksum anywhere: refused before downloading.
	srv := newBoxServer(t, false)
	data := libvirtBox(t, []byte("img"))
	srv.setCatalog(&Catalog{Name: "test/box", Versions: []CatalogVersion{{Version: "1.0.0", Providers: []CatalogProvider{
		{Name: "libvirt", URL: srv.addFile("x.box", data), ChecksumType: "none"},
	}}}})
	store, root := newStore(t)
	_, err := store.Add(context.Background(), AddOptions{Source: "test/box", Server: srv.URL()})
	var pe *download.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "--checksum TYPE:HEX") || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("err = %v", err)
	}
	if r := srv.seenRanges(); len(r) != 0 {
		t.Fatalf("the box was requested %d times despite the refusal", len(r))
	}
	assertNoBoxes(t, root)
	// --insecure lets it through, with a warning.
	rec := &recorder{}
	if _, err := store.Add(context.Background(), AddOptions{Source: "test/box", Server: srv.URL(), Insecure: true, Warn: rec.warn}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.all(), "plain HTTP") {
		t.Fatalf("warnings = %q", rec.all())
	}

	// HTTPS, no checksum: added, with a warning naming the risk; the
	// computed sha256 is recorded but not marked verified.
	tsrv := newBoxServer(t, true)
	url := tsrv.addFile("y.box", data)
	rec = &recorder{}
	box, err := store.Add(context.Background(), AddOptions{Source: url, Name: "tls/box", Client: tsrv.srv.Client(), Warn: rec.warn})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.all(), "no checksum") || !strings.Contains(rec.all(), url) {
		t.Fatalf("warnings = %q", rec.all())
	}
	if box.Source.Verified || box.Source.Checksum != "sha256:"+sha256Hex(data) {
		t.Fatalf("source = %+v", box.Source)
	}
}

func TestAddLocalFileAndDirectURL(t *testing.T) {
	data := virtualboxBox(t)
	p := filepath.Join(t.TempDir(), "my-dev.box")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	store, _ := newStore(t)
	box, err := store.Add(context.Background(), AddOptions{Source: p})
	if err != nil {
		t.Fatal(err)
	}
	if box.Name != "my-dev" || box.Version != "0" || box.Provider != "virtualbox" || box.Architecture != ArchUnknown {
		t.Fatalf("box = %s", box)
	}
	if box.Source.URL != p || box.Source.Verified {
		t.Fatalf("source = %+v", box.Source)
	}
	images, _ := box.Images()
	if len(images) != 2 {
		t.Fatalf("virtualbox images = %q", images)
	}
	// --provider must agree with the box.
	_, err = store.Add(context.Background(), AddOptions{Source: p, Name: "other", Provider: "libvirt"})
	if err == nil || !strings.Contains(err.Error(), `the box is for provider "virtualbox", not "libvirt"`) {
		t.Fatalf("provider mismatch: err = %v", err)
	}
	// --box-version makes no sense for a file.
	_, err = store.Add(context.Background(), AddOptions{Source: p, Version: "1.0"})
	if err == nil || !strings.Contains(err.Error(), "catalogs only") {
		t.Fatalf("version on a file: err = %v", err)
	}
	// A served catalog at a URL not ending in .box is recognised as one.
	srv, _ := registry(t)
	box, err = store.Add(context.Background(), AddOptions{Source: srv.URL() + "/api/v2/vagrant/test/box", Provider: "virtualbox"})
	if err != nil || box.Version != "2.0.0" {
		t.Fatalf("catalog URL: %v, %v", box, err)
	}
}

func TestAddValidatesMetadata(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"no metadata", []tarEntry{file("box.img", "x")}, "no metadata.json"},
		{"bad json", []tarEntry{file("metadata.json", "{"), file("box.img", "x")}, "invalid box metadata.json"},
		{"no provider", []tarEntry{file("metadata.json", `{"format":"qcow2"}`), file("box.img", "x")}, `no "provider"`},
		{"libvirt without image", []tarEntry{file("metadata.json", `{"provider":"libvirt"}`)}, `disk image "box.img" is missing`},
		{"disk missing", []tarEntry{file("metadata.json", `{"provider":"libvirt","disks":[{"path":"box_1.img"},{"path":"box_2.img"}]}`), file("box_1.img", "x")}, `"box_2.img" is missing`},
		{"disk outside", []tarEntry{file("metadata.json", `{"provider":"libvirt","disks":[{"path":"../x.img"}]}`)}, "leaves the box folder"},
		{"virtualbox without ovf", []tarEntry{file("metadata.json", `{"provider":"virtualbox"}`), file("d.vmdk", "x")}, "no .ovf file"},
		{"unknown provider", []tarEntry{file("metadata.json", `{"provider":"hyperv"}`)}, `unsupported box provider "hyperv"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.box")
			if err := os.WriteFile(p, makeBox(t, tt.entries...), 0o644); err != nil {
				t.Fatal(err)
			}
			store, root := newStore(t)
			_, err := store.Add(context.Background(), AddOptions{Source: p})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			assertNoBoxes(t, root)
		})
	}
	// A valid multi-disk box.
	p := filepath.Join(t.TempDir(), "multi.box")
	os.WriteFile(p, makeBox(t, file("metadata.json", `{"provider":"libvirt","disks":[{"path":"box_1.img"},{"path":"sub/box_2.img","format":"qcow2"}]}`),
		file("box_1.img", "1"), file("sub/box_2.img", "2")), 0o644)
	store, _ := newStore(t)
	box, err := store.Add(context.Background(), AddOptions{Source: p})
	if err != nil {
		t.Fatal(err)
	}
	images, _ := box.Images()
	if len(images) != 2 || images[1] != filepath.Join(box.Dir, "sub", "box_2.img") {
		t.Fatalf("images = %q", images)
	}
}

func TestConcurrentAddsOfOneBox(t *testing.T) {
	srv := newBoxServer(t, false)
	data := libvirtBox(t, randomBytes(1<<20, 11))
	url := srv.addFile("c.box", data)
	store, _ := newStore(t)
	sum := download.Checksum{Type: "sha256", Hex: sha256Hex(data)}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.Add(context.Background(), AddOptions{Source: url, Name: "con/box", Checksum: sum})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !strings.Contains(err.Error(), "already installed"):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d adds succeeded, want exactly 1: %v", ok, errs)
	}
	list, _ := store.List()
	if len(list) != 1 {
		t.Fatalf("list = %v", list)
	}
	if got, _ := os.ReadFile(filepath.Join(list[0].Dir, "box.img")); len(got) != 1<<20 {
		t.Fatalf("box.img has %d bytes", len(got))
	}
}

func TestAddHonoursContext(t *testing.T) {
	srv := newBoxServer(t, false)
	data := libvirtBox(t, randomBytes(1<<20, 12))
	url := srv.addFile("c.box", data)
	store, root := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := store.Add(ctx, AddOptions{Source: url, Name: "x", Checksum: download.Checksum{Type: "sha256", Hex: sha256Hex(data)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	assertNoBoxes(t, root)
}
