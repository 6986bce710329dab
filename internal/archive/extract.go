package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/devbundle/devbundle/internal/iox"
)

// copyBufferSize is the size of the buffer file contents are copied with.
const copyBufferSize = 1 << 20

// extractor writes entries below one folder through an *os.Root, so that
// even a link the name checks missed cannot be followed outside it.
type extractor struct {
	ctx    context.Context
	dest   string
	root   *os.Root
	buf    []byte
	links  []string // clean slash names of the symbolic links made
	writer *fileWriter
}

func newExtractor(ctx context.Context, dest string) (*extractor, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("create %q: %w", dest, err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", dest, err)
	}
	return &extractor{ctx: ctx, dest: dest, root: root, buf: make([]byte, copyBufferSize), writer: newFileWriter()}, nil
}

// end waits for pending writes, removes escaping links if extraction
// failed, releases the folder and returns err or the first write error.
func (x *extractor) end(err error) error {
	if werr := x.writer.stop(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		x.removeEscapingLinks()
	}
	_ = x.root.Close()
	return err
}

func (x *extractor) wrap(entry string, err error) error {
	var ue *UnsafeEntryError
	if errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("extract %q into %q: %w", entry, x.dest, err)
}

func (x *extractor) parent(local string) error {
	dir := parentDir(local)
	if dir == "" {
		return nil
	}
	return x.root.MkdirAll(dir, 0o755)
}

// parentDir is filepath.Dir without turning "" into ".".
func parentDir(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	if i < 0 {
		return ""
	}
	return p[:i]
}

// clear removes whatever non-folder entry exists at local, so that a later
// entry of the same name replaces it (as tar does) instead of writing
// through it.
func (x *extractor) clear(entry, local string) error {
	fi, err := x.root.Lstat(local)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return unsafe(entry, "a folder of the same name is already extracted")
	}
	// The file may still be open for writing (Windows cannot remove it).
	if err := x.writer.sync(); err != nil {
		return err
	}
	return x.root.Remove(local)
}

func (x *extractor) dir(entry, local string, mode fs.FileMode) error {
	if fi, err := x.root.Lstat(local); err == nil && !fi.IsDir() {
		if err := x.root.Remove(local); err != nil {
			return x.wrap(entry, err)
		}
	}
	if err := x.root.MkdirAll(local, mode.Perm()|0o700); err != nil {
		return x.wrap(entry, err)
	}
	return nil
}

func (x *extractor) file(entry, local string, mode fs.FileMode, r io.Reader) error {
	if err := x.parent(local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.clear(entry, local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.writer.error(); err != nil {
		return err
	}
	f, err := x.root.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm()|0o600)
	if err != nil {
		return x.wrap(entry, err)
	}
	// Decompress here, write in the writer's goroutine, in large chunks.
	defer x.writer.close(f, entry)
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		if err := x.writer.error(); err != nil {
			return err
		}
		buf := x.writer.buffer()
		n, err := iox.Fill(r, buf)
		if n > 0 {
			x.writer.write(f, entry, buf[:n])
		} else {
			x.writer.free <- buf
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return x.wrap(entry, err)
		}
	}
}

func (x *extractor) symlink(entry, clean, local, target string) error {
	if err := checkLinkTarget(entry, clean, target); err != nil {
		return err
	}
	if err := x.parent(local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.clear(entry, local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.root.Symlink(target, local); err != nil {
		return x.wrap(entry, err)
	}
	x.links = append(x.links, clean)
	// The folder holding the link may itself be reached through links.
	if err := x.resolvesInside(clean); err != nil {
		_ = x.root.Remove(local)
		return unsafe(entry, "link resolves outside the destination through other links")
	}
	return nil
}

func (x *extractor) hardlink(entry, local, target string) error {
	cleanTarget, err := cleanName(target)
	if err != nil || cleanTarget == "" {
		return unsafe(entry, "hard link to %q, which is not a file inside the destination", target)
	}
	localTarget, err := localPath(entry, cleanTarget)
	if err != nil {
		return err
	}
	fi, err := x.root.Lstat(localTarget)
	if err != nil {
		return unsafe(entry, "hard link to %q, which is not extracted before it", target)
	}
	if !fi.Mode().IsRegular() {
		return unsafe(entry, "hard link to %q, which is not a regular file", target)
	}
	if err := x.writer.sync(); err != nil {
		return err
	}
	if err := x.parent(local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.clear(entry, local); err != nil {
		return x.wrap(entry, err)
	}
	if err := x.root.Link(localTarget, local); err != nil {
		return x.wrap(entry, err)
	}
	return nil
}

// finish checks every symbolic link made against the finished tree: a chain
// of links, each harmless by its own name, may still lead outside.
func (x *extractor) finish() error {
	var first error
	for _, link := range x.links {
		if err := x.resolvesInside(link); err != nil && first == nil {
			first = unsafe(link, "link resolves outside the destination through other links")
		}
	}
	if first != nil {
		x.removeEscapingLinks()
	}
	return first
}

// removeEscapingLinks deletes every link made that leads outside, so that
// even a failed extraction leaves none behind. Links are checked again after
// each removal round, since removing one can change where others lead.
func (x *extractor) removeEscapingLinks() {
	for {
		removed := false
		for _, link := range x.links {
			local, err := localPath(link, link)
			if err != nil {
				continue
			}
			if fi, err := x.root.Lstat(local); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				continue
			}
			if x.resolvesInside(link) != nil {
				if x.root.Remove(local) == nil {
					removed = true
				}
			}
		}
		if !removed {
			return
		}
	}
}

// resolvesInside follows the path name component by component through the
// extracted tree, as the OS would, and fails if it ever climbs above the
// top folder. Missing components are taken literally.
func (x *extractor) resolvesInside(name string) error {
	var stack []string
	pending := strings.Split(name, "/")
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return errEscapes
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := path.Join(stack...)
		local, err := localPath(name, p)
		if err != nil {
			return err
		}
		fi, err := x.root.Lstat(local)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		hops++
		if hops > 64 {
			return errEscapes
		}
		target, err := x.root.Readlink(local)
		if err != nil {
			return err
		}
		target = strings.ReplaceAll(target, `\`, "/")
		if strings.HasPrefix(target, "/") || hasVolume(target) {
			return errEscapes
		}
		stack = stack[:len(stack)-1]
		pending = append(strings.Split(target, "/"), pending...)
	}
	return nil
}
