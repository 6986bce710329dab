// Package archive unpacks tar (plain, gzip, bzip2 or zstd compressed, sniffed
// by magic bytes) and zip archives into a folder, refusing any entry that
// could reach outside it: absolute paths (also Windows drive and UNC forms),
// ".." components, links whose target resolves outside, hard links to
// links, and device or FIFO files. A refused entry is reported as an
// *UnsafeEntryError naming it.
//
// Extraction writes into the given folder as it goes; callers extract into a
// temporary folder and move it into place only once everything (the
// archive, a checksum) has been verified, and delete it otherwise.
package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
)

// UnsafeEntryError reports an archive entry that was refused.
type UnsafeEntryError struct {
	// Entry is the name as stored in the archive.
	Entry string
	// Reason says what is wrong with it.
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("refusing archive entry %q: %s", e.Entry, e.Reason)
}

func unsafe(entry, format string, args ...any) error {
	return &UnsafeEntryError{Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

// hasVolume reports a Windows drive ("C:") prefix, refused on every OS so
// that an archive means the same thing everywhere.
func hasVolume(name string) bool {
	return len(name) >= 2 && name[1] == ':' &&
		(('a' <= name[0] && name[0] <= 'z') || ('A' <= name[0] && name[0] <= 'Z'))
}

// cleanName checks an entry name and returns it slash-separated and clean;
// "" means the archive's top folder itself.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", unsafe(name, "empty name")
	case strings.ContainsRune(name, 0):
		return "", unsafe(name, "name contains a NUL byte")
	case strings.HasPrefix(name, "/"):
		return "", unsafe(name, "absolute path")
	case hasVolume(name):
		return "", unsafe(name, "absolute Windows path")
	case strings.Contains(name, `\`):
		return "", unsafe(name, "backslash in name (Windows separator or UNC path)")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", unsafe(name, "\"..\" path component")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	if !fs.ValidPath(clean) {
		return "", unsafe(name, "invalid path")
	}
	return clean, nil
}

// localPath turns a clean slash name into an OS path, refusing names the
// OS cannot hold as plain files (Windows reserved names such as NUL, ':').
func localPath(entry, clean string) (string, error) {
	p, err := filepath.Localize(clean)
	if err != nil {
		return "", unsafe(entry, "not a valid file name on this system")
	}
	return p, nil
}

// checkLinkTarget checks a symbolic link's target as seen from the folder
// holding the link (clean slash name).
func checkLinkTarget(entry, clean, target string) error {
	switch {
	case target == "":
		return unsafe(entry, "link with an empty target")
	case strings.ContainsRune(target, 0):
		return unsafe(entry, "link target contains a NUL byte")
	case strings.HasPrefix(target, "/") || hasVolume(target):
		return unsafe(entry, "link to the absolute path %q", target)
	case strings.Contains(target, `\`):
		return unsafe(entry, "link target %q contains a backslash", target)
	}
	resolved := path.Join(path.Dir(clean), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return unsafe(entry, "link to %q points outside the destination", target)
	}
	return nil
}

var errEscapes = errors.New("escapes")
