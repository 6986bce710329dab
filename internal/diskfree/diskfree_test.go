package diskfree

import "testing"

func TestBytes(t *testing.T) {
	n, err := Bytes(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("a writable temp folder reports 0 bytes free")
	}
	if _, err := Bytes("/definitely/not/here"); err == nil {
		t.Errorf("missing path gave no error")
	}
}
