package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// readBufferSize is the read-ahead in front of the decompressor.
const readBufferSize = 256 << 10

// ExtractTar unpacks the tar archive read from r into dest (created if
// missing). gzip, bzip2 and zstd compression is detected from the first
// bytes; anything else is read as a plain tar. It reads r to its end, so a
// producer writing into a pipe is never left blocked, and a compressed
// stream's trailing checksum is verified. On error dest may hold part of
// the archive: extract into a temporary folder and delete it.
func ExtractTar(ctx context.Context, r io.Reader, dest string) (err error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	dec, closeDec, err := decompressor(br)
	if err != nil {
		return err
	}
	defer closeDec()

	x, err := newExtractor(ctx, dest)
	if err != nil {
		return err
	}
	defer func() { err = x.end(err) }()

	tr := tar.NewReader(dec)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.tarEntry(hdr, tr); err != nil {
			return err
		}
	}
	if err := x.finish(); err != nil {
		return err
	}
	// Read the compressed stream to its end (this checks its trailer), then
	// whatever follows it.
	// Bytes after the last compressed member that are not another member
	// (padding some tools add) are ignored, as gzip -d does.
	if _, err := io.CopyBuffer(io.Discard, dec, x.buf); err != nil && !errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("read archive: %w", err)
	}
	if _, err := io.CopyBuffer(io.Discard, br, x.buf); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	return nil
}

func (x *extractor) tarEntry(hdr *tar.Header, r io.Reader) error {
	entry := hdr.Name
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	clean, err := cleanName(entry)
	if err != nil {
		return err
	}
	if clean == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return unsafe(entry, "names the destination folder itself")
	}
	local, err := localPath(entry, clean)
	if err != nil {
		return err
	}
	if isSparse(hdr) {
		// A sparse entry's holes expand to zeros that were never in the
		// archive: a small file could fill the disk.
		return unsafe(entry, "sparse file entries are not supported; repack the archive without --sparse")
	}
	mode := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(entry, local, mode)
	case tar.TypeReg:
		return x.file(entry, local, mode, r)
	case tar.TypeSymlink:
		return x.symlink(entry, clean, local, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(entry, local, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return unsafe(entry, "device file")
	case tar.TypeFifo:
		return unsafe(entry, "FIFO (named pipe)")
	default:
		return unsafe(entry, "unsupported entry type %q", string(hdr.Typeflag))
	}
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompressor sniffs br's first bytes and returns a reader of the
// decompressed stream.
func decompressor(br *bufio.Reader) (io.Reader, func(), error) {
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read archive: %w", err)
	}
	nothing := func() {}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("read gzip archive: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("read zstd archive: %w", err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), nothing, nil
	case bytes.HasPrefix(head, magicXz):
		return nil, nil, errors.New("xz-compressed archives are not supported: repack it as a gzip'd tar (tar czf)")
	}
	return br, nothing, nil
}
