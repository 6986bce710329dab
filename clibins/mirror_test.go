package clibins

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envBinaries names the folder tests/clibins/mirror-binaries.sh prints:
// real client binaries from Debian's packages (docker from docker.io,
// kubectl from kubernetes-client).
const envBinaries = "DEVBUNDLE_CLIBINS_DIR"

// realBinary returns the path of a real client binary from
// DEVBUNDLE_CLIBINS_DIR. Without it the test is skipped loudly on a
// developer's machine and fails in CI, so CI cannot pass by skipping.
func realBinary(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(envBinaries)
	reason := ""
	if dir == "" {
		reason = envBinaries + " is not set"
	} else if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		reason = fmt.Sprintf("%s has no %s: %v", dir, name, err)
	}
	if reason == "" {
		return filepath.Join(dir, name)
	}
	msg := fmt.Sprintf("!!! TEST NEEDS REAL CLIENT BINARIES: %s; run %s=$(bash tests/clibins/mirror-binaries.sh) go test ./clibins/", reason, envBinaries)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
	return ""
}

// mirror is a local download host laid out like the official ones: files
// by URL path, served with http.ServeContent (Range, Last-Modified), a 404
// HTML page for anything else, and every request counted.
type mirror struct {
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte
	requests []string // "GET /path" plus " Range: ..." when asked
	cut      map[string]int64
	html200  bool // answer unknown paths with an HTML page and 200
}

func newMirror(t *testing.T, tls bool) *mirror {
	m := &mirror{files: map[string][]byte{}, cut: map[string]int64{}}
	h := http.HandlerFunc(m.serve)
	if tls {
		m.srv = httptest.NewTLSServer(h)
	} else {
		m.srv = httptest.NewServer(h)
	}
	t.Cleanup(m.srv.Close)
	return m
}

var modTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (m *mirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	line := r.Method + " " + r.URL.Path
	if rg := r.Header.Get("Range"); rg != "" {
		line += " Range: " + rg
	}
	m.requests = append(m.requests, line)
	data, ok := m.files[r.URL.Path]
	cutAt, cut := m.cut[r.URL.Path]
	if cut {
		delete(m.cut, r.URL.Path) // only the first request is cut
	}
	html := m.html200
	m.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if html {
			_, _ = w.Write([]byte("<!DOCTYPE html><html><body>Welcome to the download portal</body></html>"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><body><h1>404 Not Found</h1></body></html>"))
		return
	}
	if cut {
		w = &cuttingWriter{ResponseWriter: w, left: cutAt}
	}
	http.ServeContent(w, r, filepath.Base(r.URL.Path), modTime, bytes.NewReader(data))
}

// cuttingWriter drops the connection after left bytes of body.
type cuttingWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		n, _ := c.ResponseWriter.Write(p[:c.left])
		c.left = 0
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		_ = n
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

func (m *mirror) put(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = data
}

func (m *mirror) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests)
}

func (m *mirror) log() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.requests...)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type entry struct {
	name string
	data []byte
	dir  bool
}

// tgz builds a gzip'd tar as the official archives are: folders, then
// files with mode 0755. The deflate stream uses stored blocks (a valid
// gzip file, like any other to the reader) to keep the race-enabled tests
// fast.
func tgz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o755, ModTime: modTime, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.dir {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		if e.dir {
			if _, err := zw.Create(e.name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store, Modified: modTime})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// windowsProgram builds a real Windows program (PE) with the Go toolchain
// running this test, once per test binary.
var windowsProgram = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "clibins-pe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := "package main\n\nfunc main() { println(\"a windows program built by the clibins tests\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module pe\n\ngo 1.21\n"), 0o644); err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go") // go test runs with the toolchain's go on PATH
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(goBin, "build", "-o", "prog.exe", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for windows: %w: %s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "prog.exe"))
})

// clientVersion runs a real client binary and returns its canonical
// version, as install-cli's PATH probe reads it.
func clientVersion(t *testing.T, name, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, probeArgs(name)...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", bin, probeArgs(name), err)
	}
	v, err := parseClientVersion(name, out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// installEnv is a fresh cache and download folder with captured notes.
type installEnv struct {
	bin, downloads string
	mu             sync.Mutex
	logs, warns    []string
}

func newInstallEnv(t *testing.T) *installEnv {
	d := t.TempDir()
	return &installEnv{bin: filepath.Join(d, "cache", "bin"), downloads: filepath.Join(d, "cache", "downloads")}
}

func (e *installEnv) opts(c Client, version string, m *mirror) InstallOptions {
	o := InstallOptions{
		Client: c, Version: version, BinDir: e.bin, DownloadDir: e.downloads,
		Platform: Platform{OS: "linux", Arch: "amd64"},
		Log: func(format string, args ...any) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.logs = append(e.logs, fmt.Sprintf(format, args...))
		},
		Warn: func(msg string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.warns = append(e.warns, msg)
		},
		RetryDelay: 10 * time.Millisecond,
	}
	if m != nil {
		o.Mirror = m.srv.URL
		o.HTTPClient = m.srv.Client()
	}
	return o
}

func (e *installEnv) notes() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.logs, "\n") + "\n" + strings.Join(e.warns, "\n")
}

// cachedFiles lists every file under the binary cache except lock files.
func (e *installEnv) cachedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(e.bin, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			rel, _ := filepath.Rel(e.bin, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func mustClient(t *testing.T, service string) Client {
	t.Helper()
	c, err := ForService(service)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
