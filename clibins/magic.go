package clibins

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// headLen is how many leading bytes the content checks look at.
const headLen = 8

// headCheck passes writes through to w after checking the first bytes with
// check, so that an HTML error page or some other file served in place of
// the download is refused before it is unpacked or kept.
type headCheck struct {
	w      io.Writer
	check  func(head []byte) error
	head   []byte
	done   bool
	failed bool
}

func (h *headCheck) Write(p []byte) (int, error) {
	if !h.done {
		h.head = append(h.head, p[:min(len(p), headLen-len(h.head))]...)
		if len(h.head) == headLen {
			if err := h.run(); err != nil {
				return 0, err
			}
		}
	}
	n, err := h.w.Write(p)
	if err != nil {
		h.failed = true
	}
	return n, err
}

// end checks a file shorter than headLen, which Write never checked.
func (h *headCheck) end() error {
	if h.done {
		return nil
	}
	return h.run()
}

func (h *headCheck) run() error {
	h.done = true
	if err := h.check(h.head); err != nil {
		h.failed = true
		return err
	}
	return nil
}

// htmlError reports an HTML page where a binary or an archive was expected.
type htmlError struct{ what string }

func (e *htmlError) Error() string { return "an HTML page instead of a " + e.what }

func expect(head []byte, what string, ok bool) error {
	if ok {
		return nil
	}
	if looksLikeHTML(head) {
		return &htmlError{what: what}
	}
	return fmt.Errorf("the download is not a %s (it starts with % x)", what, head)
}

func gzipMagic(head []byte) error {
	return expect(head, "gzip'd tar archive", bytes.HasPrefix(head, []byte{0x1f, 0x8b}))
}

func zipMagic(head []byte) error {
	return expect(head, "zip archive", bytes.HasPrefix(head, []byte("PK\x03\x04")))
}

// executableMagic checks for the executable format of p's OS: ELF, Mach-O
// (32 or 64 bit, either byte order, or universal) or PE.
func executableMagic(head []byte, p Platform) error {
	switch p.OS {
	case "windows":
		return expect(head, "Windows program", bytes.HasPrefix(head, []byte("MZ")))
	case "darwin":
		ok := false
		for _, m := range [][]byte{
			{0xcf, 0xfa, 0xed, 0xfe}, {0xfe, 0xed, 0xfa, 0xcf},
			{0xce, 0xfa, 0xed, 0xfe}, {0xfe, 0xed, 0xfa, 0xce},
			{0xca, 0xfe, 0xba, 0xbe},
		} {
			ok = ok || bytes.HasPrefix(head, m)
		}
		return expect(head, "macOS program", ok)
	default:
		return expect(head, p.OS+" program (ELF)", bytes.HasPrefix(head, []byte("\x7fELF")))
	}
}

// checkExecutable checks the file at path is a program for p.
func checkExecutable(path string, p Platform) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, headLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	return executableMagic(head[:n], p)
}
