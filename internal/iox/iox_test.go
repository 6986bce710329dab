package iox

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFill(t *testing.T) {
	buf := make([]byte, 4)
	n, err := Fill(iotest.OneByteReader(strings.NewReader("abcdef")), buf)
	if n != 4 || err != nil || string(buf) != "abcd" {
		t.Errorf("full chunk: %d %v %q", n, err, buf)
	}
	n, err = Fill(strings.NewReader("xy"), buf)
	if n != 2 || !errors.Is(err, io.EOF) || string(buf[:n]) != "xy" {
		t.Errorf("short last chunk: %d %v", n, err)
	}
	boom := errors.New("boom")
	if _, err := Fill(iotest.ErrReader(boom), buf); !errors.Is(err, boom) {
		t.Errorf("error lost: %v", err)
	}
}
