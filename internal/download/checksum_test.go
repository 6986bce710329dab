package download

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseChecksum(t *testing.T) {
	sha := sha256.Sum256([]byte("x"))
	shaHex := hex.EncodeToString(sha[:])
	sha384 := sha512.Sum384([]byte("x"))
	tests := []struct {
		in      string
		want    Checksum
		wantErr string
	}{
		{in: "", want: Checksum{}},
		{in: "none", want: Checksum{}},
		{in: " NONE ", want: Checksum{}},
		{in: "sha256:" + shaHex, want: Checksum{"sha256", shaHex}},
		{in: "SHA256:" + strings.ToUpper(shaHex), want: Checksum{"sha256", shaHex}},
		{in: "sha384:" + hex.EncodeToString(sha384[:]), want: Checksum{"sha384", hex.EncodeToString(sha384[:])}},
		{in: "md5:0cc175b9c0f1b6a831c399e269772661", want: Checksum{"md5", "0cc175b9c0f1b6a831c399e269772661"}},
		{in: "sha1:86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", want: Checksum{"sha1", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"}},
		{in: shaHex, wantErr: "write it as TYPE:HEX"},
		{in: "crc32:abcd", wantErr: "unsupported checksum type \"crc32\""},
		{in: "sha256:xyz", wantErr: "not hexadecimal"},
		{in: "sha256:abcd", wantErr: "want 64 hex digits, got 4"},
		{in: "md5:" + shaHex, wantErr: "want 32 hex digits"},
	}
	for _, tt := range tests {
		got, err := ParseChecksum(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseChecksum(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseChecksum(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestNewChecksumFromCatalogFields(t *testing.T) {
	for _, typ := range []string{"", "none", "NONE"} {
		c, err := NewChecksum(typ, "whatever")
		if err != nil || !c.IsZero() {
			t.Errorf("NewChecksum(%q, ...) = %+v, %v; want zero", typ, c, err)
		}
	}
	if c, err := NewChecksum("sha256", ""); err != nil || !c.IsZero() {
		t.Errorf("empty digest = %+v, %v; want zero", c, err)
	}
}

func TestVerify(t *testing.T) {
	sum := sha256.Sum256([]byte("hello"))
	c := Checksum{Type: "sha256", Hex: hex.EncodeToString(sum[:])}
	h := c.NewHash()
	h.Write([]byte("hello"))
	if err := c.Verify("x", h); err != nil {
		t.Fatalf("matching digest: %v", err)
	}
	h = c.NewHash()
	h.Write([]byte("hellO"))
	err := c.Verify("http://example/x.box", h)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Got.Hex == ce.Want.Hex {
		t.Fatalf("mismatch: err = %v", err)
	}
	if !strings.Contains(err.Error(), "checksum mismatch for \"http://example/x.box\"") {
		t.Fatalf("message = %q", err)
	}
	if c.String() != "sha256:"+c.Hex || (Checksum{}).String() != "" {
		t.Fatalf("String() = %q", c.String())
	}
}

func TestCheckPolicy(t *testing.T) {
	sum := Checksum{Type: "md5", Hex: "0cc175b9c0f1b6a831c399e269772661"}
	tests := []struct {
		url      string
		sum      Checksum
		insecure bool
		warn     string
		err      string
	}{
		{url: "http://h/x.box", sum: sum},
		{url: "https://h/x.box", sum: sum},
		{url: "https://h/x.box", warn: "cannot be verified"},
		{url: "http://h/x.box", err: "pass --checksum TYPE:HEX, use an https URL, or pass --insecure"},
		{url: "http://h/x.box", insecure: true, warn: "plain HTTP (--insecure)"},
		{url: "ftp://h/x.box", sum: sum, err: "only http and https"},
		{url: "://bad", err: "invalid URL"},
	}
	for _, tt := range tests {
		warn, err := CheckPolicy(tt.url, tt.sum, tt.insecure)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CheckPolicy(%q) err = %v, want %q", tt.url, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("CheckPolicy(%q) err = %v", tt.url, err)
			continue
		}
		if (tt.warn == "") != (warn == "") || !strings.Contains(warn, tt.warn) {
			t.Errorf("CheckPolicy(%q) warning = %q, want %q", tt.url, warn, tt.warn)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 50-99/*", 50, 99, -1, true},
		{"bytes */100", -1, -1, 100, true},
		{"bytes 9-3/100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"bytes a-1/2", 0, 0, 0, false},
	}
	for _, tt := range tests {
		s, e, n, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (s != tt.start || e != tt.end || n != tt.total)) {
			t.Errorf("parseContentRange(%q) = %d %d %d %v", tt.in, s, e, n, ok)
		}
	}
}
