package archive

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// maxZipLinkTarget bounds the size of a symbolic link's target in a zip.
const maxZipLinkTarget = 4096

// ExtractZip unpacks the zip archive in r (size bytes) into dest (created
// if missing), with the same rules as ExtractTar. On error dest may hold
// part of the archive: extract into a temporary folder and delete it.
func ExtractZip(ctx context.Context, r io.ReaderAt, size int64, dest string) (err error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("read zip archive: %w", err)
	}
	x, err := newExtractor(ctx, dest)
	if err != nil {
		return err
	}
	defer func() { err = x.end(err) }()
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return x.finish()
}

func (x *extractor) zipEntry(f *zip.File) error {
	entry := f.Name
	clean, err := cleanName(entry)
	if err != nil {
		return err
	}
	mode := f.Mode()
	if clean == "" {
		if mode.IsDir() {
			return nil
		}
		return unsafe(entry, "names the destination folder itself")
	}
	local, err := localPath(entry, clean)
	if err != nil {
		return err
	}
	switch {
	case mode.IsDir():
		return x.dir(entry, local, mode.Perm())
	case mode&fs.ModeSymlink != 0:
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("read zip entry %q: %w", entry, err)
		}
		target, err := io.ReadAll(io.LimitReader(rc, maxZipLinkTarget+1))
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("read zip entry %q: %w", entry, err)
		}
		if len(target) > maxZipLinkTarget {
			return unsafe(entry, "link target longer than %d bytes", maxZipLinkTarget)
		}
		return x.symlink(entry, clean, local, string(target))
	case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return unsafe(entry, "device file")
	case mode&fs.ModeNamedPipe != 0:
		return unsafe(entry, "FIFO (named pipe)")
	case mode&fs.ModeSocket != 0:
		return unsafe(entry, "socket")
	case !mode.IsRegular():
		return unsafe(entry, "unsupported file type %v", mode.Type())
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("read zip entry %q: %w", entry, err)
	}
	defer func() { _ = rc.Close() }()
	return x.file(entry, local, mode.Perm(), rc)
}
