package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkConfined fails if anything but base/outer/dest exists under base, or
// if a link inside dest resolves outside it.
func checkConfined(t *testing.T, base, dest string) {
	t.Helper()
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		switch rel {
		case ".", "outer", filepath.Join("outer", "dest"):
			return nil
		}
		if !strings.HasPrefix(rel, filepath.Join("outer", "dest")+string(filepath.Separator)) {
			t.Fatalf("created %q outside the destination", p)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling or a loop: leads nowhere
			}
			realDest, _ := filepath.EvalSymlinks(dest)
			if real != realDest && !strings.HasPrefix(real, realDest+string(filepath.Separator)) {
				t.Fatalf("link %q resolves to %q, outside %q", p, real, realDest)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fuzzDirs(t *testing.T) (string, string) {
	base := t.TempDir()
	dest := filepath.Join(base, "outer", "dest")
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	return base, dest
}

// FuzzExtractTar feeds raw bytes to the extractor.
func FuzzExtractTar(f *testing.F) {
	f.Add(makeTar(f, goodBox))
	f.Add(gz(f, makeTar(f, goodBox)))
	f.Add(makeTar(f, []entry{{name: "../x", body: "e"}}))
	f.Add(makeTar(f, []entry{{name: "d1/d2/s", typ: tar.TypeSymlink, link: "../.."}, {name: "d1/d2/t", typ: tar.TypeSymlink, link: "s/../.."}}))
	f.Add(makeTar(f, []entry{{name: "l", typ: tar.TypeSymlink, link: "."}, {name: "l/l/x", body: "x"}}))
	f.Add(sparseBomb(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, dest := fuzzDirs(t)
		_ = ExtractTar(context.Background(), bytes.NewReader(data), dest)
		checkConfined(t, base, dest)
	})
}

// FuzzExtractTarEntries builds a well-formed tar from fuzzed names, link
// targets and types, one entry per line: a type byte, then name NUL link.
func FuzzExtractTarEntries(f *testing.F) {
	f.Add("0a/b\n2a/l\x00../b\n0a/l/x")
	f.Add("2s\x00.\n2s/t\x00..\n0s/t/x")
	f.Add("5d\n2d/u\x00../..\n1h\x00d/u")
	f.Add("0C:\\x\n0/abs\n0..\\x")
	f.Add("2a/b/s\x00../..\n2a/b/t\x00s/../..\n0a/b/t/evil")
	f.Fuzz(func(t *testing.T, spec string) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, line := range strings.Split(spec, "\n") {
			if line == "" {
				continue
			}
			typ := line[0]
			name, link, _ := strings.Cut(line[1:], "\x00")
			if name == "" {
				continue
			}
			hdr := &tar.Header{Name: name, Linkname: link, Mode: 0o644, Format: tar.FormatPAX}
			switch typ {
			case '0':
				hdr.Typeflag, hdr.Size = tar.TypeReg, 1
			case '1':
				hdr.Typeflag = tar.TypeLink
			case '2':
				hdr.Typeflag = tar.TypeSymlink
			case '5':
				hdr.Typeflag = tar.TypeDir
			default:
				hdr.Typeflag = typ
			}
			if tw.WriteHeader(hdr) != nil {
				return
			}
			if hdr.Size == 1 {
				_, _ = tw.Write([]byte{'x'})
			}
		}
		if tw.Close() != nil {
			return
		}
		base, dest := fuzzDirs(t)
		err := ExtractTar(context.Background(), bytes.NewReader(buf.Bytes()), dest)
		var ue *UnsafeEntryError
		if err != nil && !errors.As(err, &ue) && !strings.Contains(err.Error(), "extract") && !strings.Contains(err.Error(), "read archive") {
			t.Fatalf("unexpected error shape: %v", err)
		}
		checkConfined(t, base, dest)
	})
}
