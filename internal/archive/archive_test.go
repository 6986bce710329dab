package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// entry describes one tar member for the tests.
type entry struct {
	name, link string
	typ        byte
	body       string
	mode       int64
}

func makeTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox returns a folder and the destination inside it; checkSandbox
// asserts nothing but the destination appeared in the folder.
func sandbox(t testing.TB) (string, string) {
	dir := t.TempDir()
	return dir, filepath.Join(dir, "dest")
}

func checkSandbox(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "dest" {
			t.Fatalf("extraction created %q outside its destination", filepath.Join(dir, e.Name()))
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var goodBox = []entry{
	{name: "./", typ: tar.TypeDir, mode: 0o755},
	{name: "./metadata.json", body: `{"provider":"libvirt"}`},
	{name: "./Vagrantfile", body: "Vagrant.configure(2) {}\n"},
	{name: "sub/", typ: tar.TypeDir, mode: 0o700},
	{name: "sub/run.sh", body: "#!/bin/sh\n", mode: 0o755},
	{name: "sub//deep/./x", body: "deep"},
	{name: "sub/link", typ: tar.TypeSymlink, link: "run.sh"},
	{name: "sub/uplink", typ: tar.TypeSymlink, link: "../metadata.json"},
	{name: "hard", typ: tar.TypeLink, link: "./Vagrantfile"},
	{name: "dup", body: "first"},
	{name: "dup", body: "second"},
}

func checkGoodBox(t *testing.T, dest string) {
	t.Helper()
	if got := readFile(t, filepath.Join(dest, "metadata.json")); got != `{"provider":"libvirt"}` {
		t.Fatalf("metadata.json = %q", got)
	}
	if got := readFile(t, filepath.Join(dest, "sub", "deep", "x")); got != "deep" {
		t.Fatalf("sub/deep/x = %q", got)
	}
	if got := readFile(t, filepath.Join(dest, "hard")); got != "Vagrant.configure(2) {}\n" {
		t.Fatalf("hard link = %q", got)
	}
	if got := readFile(t, filepath.Join(dest, "dup")); got != "second" {
		t.Fatalf("duplicate entry = %q, want the later one", got)
	}
	if runtime.GOOS != "windows" {
		if got := readFile(t, filepath.Join(dest, "sub", "uplink")); got != `{"provider":"libvirt"}` {
			t.Fatalf("symlink read = %q", got)
		}
		fi, err := os.Stat(filepath.Join(dest, "sub", "run.sh"))
		if err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Fatalf("run.sh mode = %v, %v; want executable", fi, err)
		}
	}
}

func TestExtractTarFormats(t *testing.T) {
	plain := makeTar(t, goodBox)
	var zst bytes.Buffer
	zw, _ := zstd.NewWriter(&zst)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{
		"plain": plain,
		"gzip":  gz(t, plain),
		"zstd":  zst.Bytes(),
		// Trailing bytes after the archive are read and ignored.
		"gzip+trailer": append(gz(t, plain), make([]byte, 4096)...),
	} {
		t.Run(name, func(t *testing.T) {
			dir, dest := sandbox(t)
			r := &countingReader{r: bytes.NewReader(data)}
			if err := ExtractTar(context.Background(), r, dest); err != nil {
				t.Fatal(err)
			}
			if r.n != int64(len(data)) {
				t.Fatalf("read %d of %d input bytes; the input must be consumed", r.n, len(data))
			}
			checkGoodBox(t, dest)
			checkSandbox(t, dir)
		})
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestExtractTarRefusesUnsafeEntries(t *testing.T) {
	ok := entry{name: "metadata.json", body: "{}"}
	tests := []struct {
		name    string
		entries []entry
		bad     string // the entry the error must name
		reason  string
	}{
		{"dotdot", []entry{ok, {name: "../x", body: "evil"}}, "../x", `".." path component`},
		{"inner dotdot", []entry{{name: "a/../../x", body: "evil"}}, "a/../../x", `".."`},
		{"harmless-looking dotdot", []entry{{name: "a/../b", body: "x"}}, "a/../b", `".."`},
		{"absolute", []entry{{name: "/tmp/devbundle-evil", body: "evil"}}, "/tmp/devbundle-evil", "absolute path"},
		{"drive", []entry{{name: "C:/Windows/evil", body: "evil"}}, "C:/Windows/evil", "absolute Windows path"},
		{"drive backslash", []entry{{name: `C:\evil`, body: "evil"}}, `C:\evil`, "absolute Windows path"},
		{"unc", []entry{{name: `\\server\share\evil`, body: "evil"}}, `\\server\share\evil`, "backslash"},
		{"backslash dotdot", []entry{{name: `a\..\..\evil`, body: "evil"}}, `a\..\..\evil`, "backslash"},
		{"symlink absolute", []entry{{name: "etc", typ: tar.TypeSymlink, link: "/etc"}}, "etc", "absolute path"},
		{"symlink up", []entry{{name: "a/up", typ: tar.TypeSymlink, link: "../../x"}}, "a/up", "points outside"},
		{"symlink then write through", []entry{
			{name: "esc", typ: tar.TypeSymlink, link: ".."},
			{name: "esc/evil", body: "evil"},
		}, "esc", "points outside"},
		{"symlink chain", []entry{
			{name: "d1/d2/s", typ: tar.TypeSymlink, link: "../.."},
			{name: "d1/d2/t", typ: tar.TypeSymlink, link: "s/../.."},
		}, "d1/d2/t", "through other links"},
		{"hardlink outside", []entry{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}, "h", "not a file inside"},
		{"hardlink absolute", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, "h", "not a file inside"},
		{"hardlink to symlink", []entry{
			{name: "a/b/s", typ: tar.TypeSymlink, link: "../.."},
			{name: "h", typ: tar.TypeLink, link: "a/b/s"},
		}, "h", "not a regular file"},
		{"char device", []entry{{name: "null", typ: tar.TypeChar}}, "null", "device file"},
		{"block device", []entry{{name: "sda", typ: tar.TypeBlock}}, "sda", "device file"},
		{"fifo", []entry{{name: "pipe", typ: tar.TypeFifo}}, "pipe", "FIFO"},
		{"root as file", []entry{{name: ".", body: "x"}}, ".", "destination folder itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, compress := range []bool{false, true} {
				dir, dest := sandbox(t)
				data := makeTar(t, tt.entries)
				if compress {
					data = gz(t, data)
				}
				err := ExtractTar(context.Background(), bytes.NewReader(data), dest)
				var ue *UnsafeEntryError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want an UnsafeEntryError", err)
				}
				if ue.Entry != tt.bad || !strings.Contains(ue.Reason, tt.reason) {
					t.Fatalf("refused %q (%s), want %q (%s)", ue.Entry, ue.Reason, tt.bad, tt.reason)
				}
				if !strings.Contains(err.Error(), "refusing archive entry") || !strings.Contains(err.Error(), strconv.Quote(tt.bad)) {
					t.Fatalf("message %q does not name the entry", err)
				}
				checkSandbox(t, dir)
			}
		})
	}
}

// sparseBomb is an old-GNU sparse entry of 8 GiB with no data at all.
func sparseBomb(t testing.TB) []byte {
	data := makeTar(t, []entry{{name: "bomb.img", body: ""}})
	h := data[:512]
	h[156] = tar.TypeGNUSparse
	copy(h[257:265], "ustar  \x00")     // GNU magic
	copy(h[483:495], "77777777777\x00") // realsize
	copy(h[148:156], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return data
}

func TestExtractTarRefusesSparseBomb(t *testing.T) {
	dir, dest := sandbox(t)
	err := ExtractTar(context.Background(), bytes.NewReader(sparseBomb(t)), dest)
	var ue *UnsafeEntryError
	if !errors.As(err, &ue) || ue.Entry != "bomb.img" || !strings.Contains(ue.Reason, "sparse") {
		t.Fatalf("err = %v", err)
	}
	checkSandbox(t, dir)
}

func TestExtractTarDamagedInput(t *testing.T) {
	data := gz(t, makeTar(t, goodBox))
	// Flip a byte of the gzip trailer's CRC.
	bad := append([]byte(nil), data...)
	bad[len(bad)-6] ^= 0xff
	_, dest := sandbox(t)
	if err := ExtractTar(context.Background(), bytes.NewReader(bad), dest); err == nil {
		t.Fatal("a damaged gzip trailer was accepted")
	}
	_, dest = sandbox(t)
	if err := ExtractTar(context.Background(), bytes.NewReader(data[:len(data)/2]), dest); err == nil {
		t.Fatal("a truncated archive was accepted")
	}
	_, dest = sandbox(t)
	xz := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3}
	if err := ExtractTar(context.Background(), bytes.NewReader(xz), dest); err == nil || !strings.Contains(err.Error(), "xz") {
		t.Fatalf("xz: err = %v", err)
	}
}

func TestExtractTarHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, dest := sandbox(t)
	err := ExtractTar(ctx, bytes.NewReader(makeTar(t, goodBox)), dest)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestStream(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 300000) // ~4.6 MiB, several chunks
	entries := append([]entry{{name: "big.img", body: big}}, goodBox...)
	data := gz(t, makeTar(t, entries))

	dir, dest := sandbox(t)
	s := NewTarStream(context.Background(), dest)
	// Odd-sized writes, as a network would deliver them.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 777777)
		if _, err := s.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "big.img")); got != big {
		t.Fatalf("big.img differs (%d bytes)", len(got))
	}
	checkGoodBox(t, dest)
	checkSandbox(t, dir)
}

func TestStreamReportsRefusalToWriter(t *testing.T) {
	data := makeTar(t, []entry{{name: "../evil", body: strings.Repeat("x", 1<<20)}, {name: "pad", body: strings.Repeat("y", 20<<20)}})
	dir, dest := sandbox(t)
	s := NewTarStream(context.Background(), dest)
	var werr error
	for rest := data; len(rest) > 0 && werr == nil; {
		n := min(len(rest), 1<<20)
		_, werr = s.Write(rest[:n])
		rest = rest[n:]
	}
	var ue *UnsafeEntryError
	if !errors.As(werr, &ue) {
		t.Fatalf("Write err = %v, want the refusal", werr)
	}
	if err := s.Close(); !errors.As(err, &ue) {
		t.Fatalf("Close err = %v", err)
	}
	checkSandbox(t, dir)
}

func TestStreamAbort(t *testing.T) {
	data := gz(t, makeTar(t, goodBox))
	_, dest := sandbox(t)
	s := NewTarStream(context.Background(), dest)
	if _, err := s.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	s.Abort(errors.New("download failed"))
	// After Abort returns nothing writes into dest any more: removing it
	// must succeed and stay removed.
	if err := os.RemoveAll(dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dest reappeared: %v", err)
	}
}

type zipEntry struct {
	name string
	mode fs.FileMode
	body string
}

func makeZip(t testing.TB, entries []zipEntry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractZip(t *testing.T) {
	data := makeZip(t, []zipEntry{
		{name: "docker/", mode: fs.ModeDir | 0o755},
		{name: "docker/docker.exe", body: "MZ", mode: 0o755},
		{name: "docker/latest", mode: fs.ModeSymlink | 0o777, body: "docker.exe"},
	})
	dir, dest := sandbox(t)
	if err := ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), dest); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "docker", "docker.exe")); got != "MZ" {
		t.Fatalf("docker.exe = %q", got)
	}
	checkSandbox(t, dir)

	bad := []struct {
		entries []zipEntry
		entry   string
	}{
		{[]zipEntry{{name: "../evil", body: "x"}}, "../evil"},
		{[]zipEntry{{name: "/abs", body: "x"}}, "/abs"},
		{[]zipEntry{{name: `..\evil`, body: "x"}}, `..\evil`},
		{[]zipEntry{{name: "l", mode: fs.ModeSymlink | 0o777, body: "../../etc"}}, "l"},
		{[]zipEntry{{name: "p", mode: fs.ModeNamedPipe | 0o644}}, "p"},
		{[]zipEntry{{name: "d", mode: fs.ModeDevice | 0o644}}, "d"},
	}
	for _, b := range bad {
		data := makeZip(t, b.entries)
		dir, dest := sandbox(t)
		err := ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), dest)
		var ue *UnsafeEntryError
		if !errors.As(err, &ue) || ue.Entry != b.entry {
			t.Fatalf("%q: err = %v", b.entry, err)
		}
		checkSandbox(t, dir)
	}
}
