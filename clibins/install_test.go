package clibins

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/download"
)

// dockerMirror serves Debian's real docker client as download.docker.com
// does: docker/docker inside docker-<version>.tgz, over HTTPS.
func dockerMirror(t *testing.T) (m *mirror, version string, binary []byte) {
	t.Helper()
	bin := realBinary(t, "docker")
	version = clientVersion(t, "docker", bin)
	binary = readFile(t, bin)
	m = newMirror(t, true)
	m.put("/linux/static/stable/x86_64/docker-"+version+".tgz",
		tgz(t, entry{name: "docker/", dir: true}, entry{name: "docker/docker", data: binary}))
	return m, version, binary
}

// kubectlMirror serves Debian's real kubectl as dl.k8s.io does, with its
// .sha256, over plain HTTP (the checksum makes that acceptable).
func kubectlMirror(t *testing.T) (m *mirror, version string, binary []byte) {
	t.Helper()
	bin := realBinary(t, "kubectl")
	version = clientVersion(t, "kubectl", bin)
	binary = readFile(t, bin)
	m = newMirror(t, false)
	p := "/release/v" + version + "/bin/linux/amd64/kubectl"
	m.put(p, binary)
	m.put(p+".sha256", []byte(sha256Hex(binary)))
	return m, version, binary
}

// Debian's docker client packed like download.docker.com's archive:
// installed into the cache layout, runnable, reporting the version it was
// installed as; unverified (docker publishes no checksum), so a warning;
// a second install costs no request at all.
func TestInstallDockerFromMirror(t *testing.T) {
	m, version, binary := dockerMirror(t)
	e := newInstallEnv(t)
	ctx := context.Background()
	res, err := Install(ctx, e.opts(mustClient(t, "docker"), version+"+dfsg1", m))
	if err != nil {
		t.Fatalf("Install: %v\n%s", err, e.notes())
	}
	want := filepath.Join(e.bin, "docker", version, "linux-amd64", "docker")
	if res.Path != want || res.From != FromDownload || res.Version != version || res.Verified != "" {
		t.Errorf("result %+v, want %s from a download, unverified", res, want)
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("cached binary: %v %v", fi, err)
	}
	if !bytes.Equal(readFile(t, want), binary) {
		t.Errorf("cached binary differs from the one in the archive")
	}
	if got := clientVersion(t, "docker", want); got != version {
		t.Errorf("installed docker reports %q, want %q", got, version)
	}
	if !strings.Contains(e.notes(), "cannot be verified: docker publishes no checksum") {
		t.Errorf("no unverified-download warning in:\n%s", e.notes())
	}
	if files := e.cachedFiles(t); !slices.Equal(files, []string{filepath.Join("docker", version, "linux-amd64", "docker")}) {
		t.Errorf("cache holds %v, want the binary alone", files)
	}
	if n := m.count(); n != 1 {
		t.Errorf("first install made %d requests, want 1: %v", n, m.log())
	}

	again, err := Install(ctx, e.opts(mustClient(t, "docker"), version, m))
	if err != nil || again.From != FromCache || again.Path != want {
		t.Errorf("second install: %+v, %v", again, err)
	}
	if n := m.count(); n != 1 {
		t.Errorf("second install made requests: %v", m.log())
	}
}

// A pinned digest is verified like a published one, and a mismatch keeps
// nothing; without one, plain HTTP is refused unless --insecure.
func TestInstallDockerPinnedAndPolicy(t *testing.T) {
	m, version, binary := dockerMirror(t)
	archivePath := "/linux/static/stable/x86_64/docker-" + version + ".tgz"
	archiveData := m.files[archivePath]
	rel := strings.TrimPrefix(archivePath, "/")
	ctx := context.Background()

	e := newInstallEnv(t)
	o := e.opts(mustClient(t, "docker"), version, m)
	o.Pinned = map[string]string{rel: sha256Hex(archiveData)}
	res, err := Install(ctx, o)
	if err != nil || !strings.HasPrefix(res.Verified, "pinned sha256") {
		t.Fatalf("pinned install: %+v, %v", res, err)
	}
	if strings.Contains(e.notes(), "cannot be verified") {
		t.Errorf("warned about a pinned download:\n%s", e.notes())
	}
	if !bytes.Equal(readFile(t, res.Path), binary) {
		t.Errorf("pinned install: wrong bytes")
	}

	bad := newInstallEnv(t)
	o = bad.opts(mustClient(t, "docker"), version, m)
	o.Pinned = map[string]string{rel: strings.Repeat("0", 64)}
	_, err = Install(ctx, o)
	var ce *download.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("wrong pinned digest: %v, want a checksum mismatch", err)
	}
	if files := bad.cachedFiles(t); len(files) != 0 {
		t.Errorf("a refused download left %v in the cache", files)
	}

	// Plain HTTP and no checksum: refused before any request.
	plain := newMirror(t, false)
	plain.put(archivePath, archiveData)
	h := newInstallEnv(t)
	_, err = Install(ctx, h.opts(mustClient(t, "docker"), version, plain))
	if err == nil || !strings.Contains(err.Error(), "over plain HTTP") || !strings.Contains(dberr.Hint(err), "--insecure") {
		t.Errorf("plain HTTP docker: %v (hint %q)", err, dberr.Hint(err))
	}
	if plain.count() != 0 {
		t.Errorf("refused download still made requests: %v", plain.log())
	}
	o = h.opts(mustClient(t, "docker"), version, plain)
	o.Insecure = true
	if res, err := Install(ctx, o); err != nil || res.From != FromDownload {
		t.Errorf("plain HTTP with --insecure: %+v, %v", res, err)
	}
	if !strings.Contains(h.notes(), "over plain HTTP (--insecure)") {
		t.Errorf("no --insecure warning:\n%s", h.notes())
	}
}

// Debian's kubectl from a dl.k8s.io layout, verified against its .sha256;
// a second install makes no request.
func TestInstallKubectl(t *testing.T) {
	m, version, binary := kubectlMirror(t)
	e := newInstallEnv(t)
	ctx := context.Background()
	res, err := Install(ctx, e.opts(mustClient(t, "kubernetes"), "v"+version, m))
	if err != nil {
		t.Fatalf("Install: %v\n%s", err, e.notes())
	}
	want := filepath.Join(e.bin, "kubectl", version, "linux-amd64", "kubectl")
	if res.Path != want || res.From != FromDownload || !strings.HasPrefix(res.Verified, "sha256 from "+m.srv.URL+"/release/v"+version+"/bin/linux/amd64/kubectl.sha256") {
		t.Errorf("result %+v", res)
	}
	if !bytes.Equal(readFile(t, want), binary) {
		t.Errorf("cached kubectl differs")
	}
	if got := clientVersion(t, "kubectl", want); got != version {
		t.Errorf("installed kubectl reports %q, want %q", got, version)
	}
	if n := m.count(); n != 2 {
		t.Errorf("install made %d requests, want 2 (checksum, binary): %v", n, m.log())
	}
	if _, err := Install(ctx, e.opts(mustClient(t, "kubernetes"), version, m)); err != nil || m.count() != 2 {
		t.Errorf("reuse: %v, requests %v", err, m.log())
	}
	entries, _ := os.ReadDir(e.downloads)
	if len(entries) != 0 {
		t.Errorf("downloads folder keeps %v after success", entries)
	}
}

// A file that does not match its published checksum is refused: nothing
// in the cache, no partial download kept.
func TestInstallRefusesTamperedFile(t *testing.T) {
	m, version, binary := kubectlMirror(t)
	tampered := bytes.Clone(binary)
	tampered[len(tampered)/2] ^= 0xff
	m.put("/release/v"+version+"/bin/linux/amd64/kubectl", tampered)
	e := newInstallEnv(t)
	_, err := Install(context.Background(), e.opts(mustClient(t, "kubernetes"), version, m))
	var ce *download.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("tampered kubectl: %v, want a checksum mismatch", err)
	}
	if files := e.cachedFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v after a refused download", files)
	}
	entries, _ := os.ReadDir(e.downloads)
	if len(entries) != 0 {
		t.Errorf("downloads folder keeps %v after a checksum mismatch", entries)
	}
}

// A connection cut in the middle is resumed with a Range request, within
// the same run and, after a run that gave up, by the next one.
func TestInstallResumesCutConnection(t *testing.T) {
	m, version, binary := kubectlMirror(t)
	p := "/release/v" + version + "/bin/linux/amd64/kubectl"
	ctx := context.Background()

	m.cut[p] = int64(len(binary) / 3)
	e := newInstallEnv(t)
	res, err := Install(ctx, e.opts(mustClient(t, "kubernetes"), version, m))
	if err != nil {
		t.Fatalf("Install after a cut connection: %v\n%s", err, e.notes())
	}
	if !bytes.Equal(readFile(t, res.Path), binary) {
		t.Fatalf("resumed download differs from the file")
	}
	if !hasRangeRequest(m.log(), p) {
		t.Errorf("no Range request after the cut: %v", m.log())
	}

	// One attempt only: the run fails, keeps the partial file; the next run
	// resumes it.
	m2, _, _ := kubectlMirror(t)
	m2.cut[p] = int64(len(binary) / 2)
	e2 := newInstallEnv(t)
	o := e2.opts(mustClient(t, "kubernetes"), version, m2)
	o.MaxAttempts = 1
	if _, err := Install(ctx, o); err == nil {
		t.Fatal("a single attempt on a cut connection succeeded")
	}
	if files := e2.cachedFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v after a failed download", files)
	}
	res, err = Install(ctx, e2.opts(mustClient(t, "kubernetes"), version, m2))
	if err != nil || !bytes.Equal(readFile(t, res.Path), binary) {
		t.Fatalf("second run: %v", err)
	}
	if !hasRangeRequest(m2.log(), p) {
		t.Errorf("second run did not resume with a Range request: %v", m2.log())
	}
}

func hasRangeRequest(log []string, path string) bool {
	for _, l := range log {
		if strings.HasPrefix(l, "GET "+path+" Range: bytes=") && !strings.HasSuffix(l, "bytes=0-") {
			return true
		}
	}
	return false
}

// A version the source does not have: one clear error, exit 126, hinting
// at --cli-version; an HTML page answered with 200 is never kept.
func TestInstallMissingVersion(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		service, version string
		tls              bool
	}{
		{"docker", "99.0.0", true},
		{"kubernetes", "1.99.0", false},
		{"openshift", "4.99.0", false},
		{"openshift", "3.99.0", false},
	} {
		m := newMirror(t, tc.tls)
		e := newInstallEnv(t)
		_, err := Install(ctx, e.opts(mustClient(t, tc.service), tc.version, m))
		if !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(err.Error(), "not available") || !strings.Contains(dberr.Hint(err), "--cli-version") {
			t.Errorf("%s %s: %v (hint %q); want exit 126 naming --cli-version", tc.service, tc.version, err, dberr.Hint(err))
		}
		if files := e.cachedFiles(t); len(files) != 0 {
			t.Errorf("%s: cache holds %v", tc.service, files)
		}

		// A portal answering every URL with an HTML page and 200.
		m.html200 = true
		_, err = Install(ctx, e.opts(mustClient(t, tc.service), tc.version, m))
		if err == nil || !strings.Contains(err.Error(), "HTML page") || !errors.Is(err, dberr.ErrServiceUnavailable) {
			t.Errorf("%s %s from an HTML portal: %v", tc.service, tc.version, err)
		}
		if files := e.cachedFiles(t); len(files) != 0 {
			t.Errorf("%s: cache holds %v after an HTML page", tc.service, files)
		}
	}
}

// oc 4.x: the archive layout of mirror.openshift.com and its
// sha256sum.txt. No real oc exists on this machine: the archives hold
// Debian's real kubectl renamed to oc (Linux) and a real Windows program
// built by the Go toolchain renamed to oc.exe (the zip for Windows).
func TestInstallOC4RenamedBinaries(t *testing.T) {
	ocLinux := readFile(t, realBinary(t, "kubectl"))
	ocWindows, err := windowsProgram()
	if err != nil {
		t.Fatal(err)
	}
	const version = "4.14.3"
	dir := "/pub/openshift-v4/clients/ocp/" + version + "/"
	linux := tgz(t, entry{name: "README.md", data: []byte("oc and kubectl\n")}, entry{name: "oc", data: ocLinux})
	windows := zipOf(t, entry{name: "README.md", data: []byte("oc and kubectl\n")}, entry{name: "oc.exe", data: ocWindows}, entry{name: "kubectl.exe", data: ocWindows[:4096]})
	m := newMirror(t, false)
	m.put(dir+"openshift-client-linux.tar.gz", linux)
	m.put(dir+"openshift-client-windows.zip", windows)
	m.put(dir+"sha256sum.txt", []byte(sha256Hex(linux)+"  openshift-client-linux.tar.gz\n"+sha256Hex(windows)+"  openshift-client-windows.zip\n"))

	e := newInstallEnv(t)
	ctx := context.Background()
	res, err := Install(ctx, e.opts(mustClient(t, "openshift"), version, m))
	if err != nil {
		t.Fatalf("oc for linux: %v", err)
	}
	if res.Path != filepath.Join(e.bin, "oc", version, "linux-amd64", "oc") || !bytes.Equal(readFile(t, res.Path), ocLinux) {
		t.Errorf("oc for linux: %+v", res)
	}
	o := e.opts(mustClient(t, "openshift"), version, m)
	o.Platform = Platform{OS: "windows", Arch: "amd64"}
	res, err = Install(ctx, o)
	if err != nil {
		t.Fatalf("oc for windows: %v", err)
	}
	want := filepath.Join(e.bin, "oc", version, "windows-amd64", "oc.exe")
	if res.Path != want || !bytes.Equal(readFile(t, want), ocWindows) {
		t.Errorf("oc for windows: %+v", res)
	}
	if fi, _ := os.Stat(want); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("oc.exe mode: %v", fi)
	}
	if files := e.cachedFiles(t); len(files) != 2 {
		t.Errorf("cache holds %v, want oc and oc.exe alone", files)
	}

	// darwin/arm64 is not in sha256sum.txt here: a no-build error.
	o.Platform = Platform{OS: "darwin", Arch: "arm64"}
	if _, err := Install(ctx, o); !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(err.Error(), "does not list") {
		t.Errorf("oc for darwin/arm64: %v", err)
	}
	// A Linux program where a Windows one belongs is refused.
	bad := zipOf(t, entry{name: "oc.exe", data: ocLinux})
	m2 := newMirror(t, false)
	m2.put(dir+"openshift-client-windows.zip", bad)
	m2.put(dir+"sha256sum.txt", []byte(sha256Hex(bad)+"  openshift-client-windows.zip\n"))
	e2 := newInstallEnv(t)
	o = e2.opts(mustClient(t, "openshift"), version, m2)
	o.Platform = Platform{OS: "windows", Arch: "amd64"}
	if _, err := Install(ctx, o); err == nil || !strings.Contains(err.Error(), "not a Windows program") {
		t.Errorf("ELF as oc.exe: %v", err)
	}
	if files := e2.cachedFiles(t); len(files) != 0 {
		t.Errorf("cache holds %v", files)
	}
}

// oc 3.x: the file name carries a commit nobody can guess; CHECKSUM names
// it. The archive nests oc in a folder as origin's did. (The binary is
// Debian's kubectl renamed to oc; the commit is made up by the test.)
func TestInstallOC3FromChecksumList(t *testing.T) {
	ocLinux := readFile(t, realBinary(t, "kubectl"))
	const version, commit = "3.11.0", "5f3a9c1"
	base := "openshift-origin-client-tools-v" + version + "-" + commit
	linux := tgz(t, entry{name: base + "-linux-64bit/", dir: true},
		entry{name: base + "-linux-64bit/LICENSE", data: []byte("license\n")},
		entry{name: base + "-linux-64bit/oc", data: ocLinux})
	dir := "/openshift/origin/releases/download/v" + version + "/"
	m := newMirror(t, false)
	m.put(dir+base+"-linux-64bit.tar.gz", linux)
	m.put(dir+"CHECKSUM", []byte(
		sha256Hex([]byte("mac"))+"  "+base+"-mac.zip\n"+
			sha256Hex(linux)+"  "+base+"-linux-64bit.tar.gz\n"+
			sha256Hex([]byte("win"))+"  "+base+"-windows.zip\n"+
			sha256Hex([]byte("server"))+"  openshift-origin-server-v"+version+"-"+commit+"-linux-64bit.tar.gz\n"))
	e := newInstallEnv(t)
	res, err := Install(context.Background(), e.opts(mustClient(t, "openshift"), "v"+version, m))
	if err != nil {
		t.Fatalf("oc 3.x: %v", err)
	}
	if !bytes.Equal(readFile(t, res.Path), ocLinux) || res.Verified != "sha256 from "+m.srv.URL+dir+"CHECKSUM" {
		t.Errorf("oc 3.x: %+v", res)
	}
	if got := m.log(); len(got) != 2 || got[0] != "GET "+dir+"CHECKSUM" || got[1] != "GET "+dir+base+"-linux-64bit.tar.gz" {
		t.Errorf("requests %v", got)
	}
	// darwin/arm64 has no 3.x build: refused with no request.
	o := e.opts(mustClient(t, "openshift"), version, m)
	o.Platform = Platform{OS: "darwin", Arch: "arm64"}
	before := m.count()
	if _, err := Install(context.Background(), o); !errors.Is(err, dberr.ErrServiceUnavailable) || m.count() != before {
		t.Errorf("oc 3.x for darwin/arm64: %v, requests %v", err, m.log())
	}
}

// --path: a missing folder is exit 126; an existing one gets a 0755 copy.
func TestInstallIntoPath(t *testing.T) {
	m, version, binary := kubectlMirror(t)
	e := newInstallEnv(t)
	ctx := context.Background()
	o := e.opts(mustClient(t, "kubernetes"), version, m)
	o.Dest = filepath.Join(t.TempDir(), "missing")
	_, err := Install(ctx, o)
	if !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(err.Error(), "does not exist") || dberr.ExitCode(err) != 126 {
		t.Errorf("missing --path: %v", err)
	}
	if m.count() != 0 {
		t.Errorf("missing --path still downloaded: %v", m.log())
	}
	o.Dest = t.TempDir()
	res, err := Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(o.Dest, "kubectl")
	if res.Path != want || !bytes.Equal(readFile(t, want), binary) {
		t.Errorf("--path result %+v", res)
	}
	if fi, _ := os.Stat(want); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("--path copy mode: %v", fi)
	}
	if _, err := os.Stat(filepath.Join(e.bin, "kubectl", version, "linux-amd64", "kubectl")); err != nil {
		t.Errorf("--path did not keep the cached copy: %v", err)
	}
	file := filepath.Join(t.TempDir(), "afile")
	_ = os.WriteFile(file, nil, 0o644)
	o.Dest = file
	if _, err := Install(ctx, o); !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("--path naming a file: %v", err)
	}
}

// A client already on PATH with the wanted version is used as it is (the
// real Debian binaries, probed by running them); one of another version is
// not.
func TestInstallUsesMatchingClientOnPath(t *testing.T) {
	ctx := context.Background()
	for _, svc := range []string{"docker", "kubernetes"} {
		c := mustClient(t, svc)
		bin := realBinary(t, c.Name)
		version := clientVersion(t, c.Name, bin)
		dir := t.TempDir()
		onPath := filepath.Join(dir, c.Name)
		if err := os.Symlink(bin, onPath); err != nil {
			t.Fatal(err)
		}
		m := newMirror(t, true)
		e := newInstallEnv(t)
		o := e.opts(c, version, m)
		o.Platform = Platform{}
		o.SearchPath = strings.Join([]string{"relative/dir", t.TempDir(), dir, "/usr/bin"}, string(os.PathListSeparator))
		res, err := Install(ctx, o)
		if err != nil || res.From != FromPATH || res.Path != onPath {
			t.Errorf("%s on PATH: %+v, %v", c.Name, res, err)
		}
		if m.count() != 0 || len(e.cachedFiles(t)) != 0 {
			t.Errorf("%s on PATH: requests %v, cache %v", c.Name, m.log(), e.cachedFiles(t))
		}
		if !strings.Contains(e.notes(), "already on your PATH at "+onPath) {
			t.Errorf("%s on PATH: notes\n%s", c.Name, e.notes())
		}

		// Another version wanted: the one on PATH is named and not used.
		o.Version = "1.0.0"
		_, err = Install(ctx, o)
		if !errors.Is(err, dberr.ErrServiceUnavailable) {
			t.Errorf("%s 1.0.0: %v, want not available from the empty mirror", c.Name, err)
		}
		if !strings.Contains(e.notes(), "is "+version+", not 1.0.0") {
			t.Errorf("%s: no note about the mismatching client:\n%s", c.Name, e.notes())
		}
	}
}

// The same cache entry installed by two processes at once ends up whole:
// the lock serialises them and the second finds the first one's copy.
func TestInstallConcurrentCallsShareTheDownload(t *testing.T) {
	m, version, binary := kubectlMirror(t)
	e := newInstallEnv(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	results := make(chan Result, 2)
	for range 2 {
		go func() {
			r, err := Install(ctx, e.opts(mustClient(t, "kubernetes"), version, m))
			errs <- err
			results <- r
		}()
	}
	downloads := 0
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if r := <-results; r.From == FromDownload {
			downloads++
		}
	}
	if downloads != 1 {
		t.Errorf("%d downloads, want 1 (requests %v)", downloads, m.log())
	}
	if !bytes.Equal(readFile(t, filepath.Join(e.bin, "kubectl", version, "linux-amd64", "kubectl")), binary) {
		t.Errorf("cached kubectl differs")
	}
}
