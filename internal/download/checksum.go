package download

import (
	"crypto/md5"  //nolint:gosec // md5 is one of the checksum types catalogs publish
	"crypto/sha1" //nolint:gosec // sha1 likewise
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Checksum is an expected digest of a file: an algorithm name and the digest
// in lowercase hex. The zero Checksum means "no checksum known".
type Checksum struct {
	// Type is one of md5, sha1, sha256, sha384, sha512.
	Type string
	// Hex is the digest in lowercase hexadecimal.
	Hex string
}

var hashes = map[string]struct {
	new  func() hash.Hash
	size int
}{
	"md5":    {md5.New, md5.Size},
	"sha1":   {sha1.New, sha1.Size},
	"sha256": {sha256.New, sha256.Size},
	"sha384": {sha512.New384, sha512.Size384},
	"sha512": {sha512.New, sha512.Size},
}

const checksumTypes = "md5, sha1, sha256, sha384, sha512"

// ParseChecksum parses "TYPE:HEX", as given to --checksum. An empty string
// or "none" gives the zero Checksum.
func ParseChecksum(s string) (Checksum, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return Checksum{}, nil
	}
	typ, value, ok := strings.Cut(s, ":")
	if !ok {
		return Checksum{}, fmt.Errorf("invalid checksum %q: write it as TYPE:HEX, with TYPE one of %s", s, checksumTypes)
	}
	return NewChecksum(typ, value)
}

// NewChecksum builds a Checksum from an algorithm name and a hex digest, as
// catalogs publish them in separate fields. A type of "" or "none", or an
// empty digest, gives the zero Checksum: the publisher gave none.
func NewChecksum(typ, hexValue string) (Checksum, error) {
	typ = strings.ToLower(strings.TrimSpace(typ))
	hexValue = strings.ToLower(strings.TrimSpace(hexValue))
	if typ == "" || typ == "none" || hexValue == "" {
		return Checksum{}, nil
	}
	h, ok := hashes[typ]
	if !ok {
		return Checksum{}, fmt.Errorf("unsupported checksum type %q: use one of %s", typ, checksumTypes)
	}
	raw, err := hex.DecodeString(hexValue)
	if err != nil {
		return Checksum{}, fmt.Errorf("invalid %s checksum %q: not hexadecimal", typ, hexValue)
	}
	if len(raw) != h.size {
		return Checksum{}, fmt.Errorf("invalid %s checksum %q: want %d hex digits, got %d", typ, hexValue, 2*h.size, len(hexValue))
	}
	return Checksum{Type: typ, Hex: hexValue}, nil
}

// IsZero reports whether no checksum is known.
func (c Checksum) IsZero() bool { return c.Type == "" }

// String gives "TYPE:HEX", or "" for the zero Checksum.
func (c Checksum) String() string {
	if c.IsZero() {
		return ""
	}
	return c.Type + ":" + c.Hex
}

// NewHash returns a hash of c's type; sha256 for the zero Checksum.
func (c Checksum) NewHash() hash.Hash {
	if h, ok := hashes[c.Type]; ok {
		return h.new()
	}
	return sha256.New()
}

// Verify compares the digest accumulated in h with c. It returns a
// *ChecksumError naming both digests when they differ; source names the
// file in that error.
func (c Checksum) Verify(source string, h hash.Hash) error {
	got := hex.EncodeToString(h.Sum(nil))
	if c.IsZero() || got == c.Hex {
		return nil
	}
	return &ChecksumError{Source: source, Want: c, Got: Checksum{Type: c.Type, Hex: got}}
}

// ChecksumError reports a file whose digest is not the expected one.
type ChecksumError struct {
	Source    string
	Want, Got Checksum
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %q: want %s, got %s; the file is damaged or was tampered with, nothing was kept (run again to download it afresh)",
		e.Source, e.Want, e.Got)
}
