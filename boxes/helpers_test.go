package boxes

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// tarEntry is one member of a generated box.
type tarEntry struct {
	name, link string
	typ        byte
	body       []byte
}

func file(name, body string) tarEntry { return tarEntry{name: name, body: []byte(body)} }

// randomBytes returns n incompressible bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeBox builds a gzip'd tar from entries, as a real .box is.
func makeBox(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// libvirtBox builds a valid libvirt box whose box.img is image.
func libvirtBox(t testing.TB, image []byte) []byte {
	return makeBox(t,
		file("./metadata.json", `{"provider":"libvirt","format":"qcow2","virtual_size":10}`),
		file("./Vagrantfile", "Vagrant.configure(\"2\") do |c| end\n"),
		tarEntry{name: "./box.img", body: image},
	)
}

func virtualboxBox(t testing.TB) []byte {
	return makeBox(t,
		file("metadata.json", `{"provider":"virtualbox"}`),
		file("box.ovf", "<Envelope/>"),
		file("box-disk001.vmdk", "vmdk"),
		file("Vagrantfile", ""),
	)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// boxServer serves catalogs and .box files like a box registry, with Range
// support, and records what it was asked.
type boxServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	catalogs map[string]*Catalog // by user/name
	files    map[string][]byte   // by file name under /files/
	ranges   []string            // Range headers of file requests
	requests []string            // paths requested

	cutNext   atomic.Int32 // cut this many file responses after cutAt bytes
	cutAt     int
	failFiles atomic.Int32 // answer file requests with this status
}

func newBoxServer(t *testing.T, tls bool) *boxServer {
	s := &boxServer{t: t, catalogs: map[string]*Catalog{}, files: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v2/vagrant/", s.serveCatalog)
	mux.HandleFunc("/files/", s.serveFile)
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/files/"+strings.TrimPrefix(r.URL.Path, "/redirect/"), http.StatusFound)
	})
	if tls {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *boxServer) URL() string { return s.srv.URL }

func (s *boxServer) addFile(name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = data
	return s.srv.URL + "/files/" + name
}

func (s *boxServer) setCatalog(c *Catalog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catalogs[c.Name] = c
}

func (s *boxServer) seenRanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *boxServer) serveCatalog(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/v2/vagrant/")
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path)
	c, ok := s.catalogs[name]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c)
}

func (s *boxServer) serveFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/files/")
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	data, ok := s.files[name]
	s.mu.Unlock()
	if code := s.failFiles.Load(); code != 0 {
		http.Error(w, "failure", int(code))
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := `"` + sha256Hex(data)[:16] + `"`
	if s.cutNext.Add(-1) >= 0 && r.Header.Get("Range") == "" {
		// Send a full-length header, part of the body, then drop the
		// connection, as a network failure would.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: %s\r\n\r\n", len(data), etag)
		buf.Write(data[:s.cutAt])
		buf.Flush()
		conn.Close()
		return
	}
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, name, time.Unix(1700000000, 0), bytes.NewReader(data))
}

// catalogFor builds a catalog entry for a file served by s.
func provider(name, url, arch string, data []byte) CatalogProvider {
	return CatalogProvider{Name: name, URL: url, Architecture: arch, ChecksumType: "sha256", Checksum: sha256Hex(data)}
}

// tree lists every file and folder under root, relative, sorted; folders
// end in "/".
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) && p == root {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// assertNoBoxes checks the store holds no box and no leftovers: only its
// own bookkeeping folders and lock files.
func assertNoBoxes(t *testing.T, root string) {
	t.Helper()
	for _, p := range tree(t, root) {
		switch {
		case p == ".locks/" || p == ".tmp/" || p == ".downloads/":
		case strings.HasPrefix(p, ".locks/") && strings.HasSuffix(p, ".lock"):
		default:
			t.Errorf("store holds %q after a failed add; tree: %q", p, tree(t, root))
		}
	}
}

func newStore(t *testing.T) (*Store, string) {
	root := filepath.Join(t.TempDir(), "boxes")
	return NewStore(root), root
}

type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) warn(s string) { r.mu.Lock(); r.lines = append(r.lines, s); r.mu.Unlock() }

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}
