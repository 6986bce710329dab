package vm

import "testing"

func TestParseOSRelease(t *testing.T) {
	got := ParseOSRelease(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
# a comment
ID=debian
VARIANT="devbundle test box"
VARIANT_ID=devbundle-testbox
VARIANT_VERSION='1'
QUOTED="a \"b\" c"
`)
	want := map[string]string{
		"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian", "VERSION_ID": "12",
		"VARIANT": "devbundle test box", "VARIANT_ID": "devbundle-testbox", "VARIANT_VERSION": "1",
		"QUOTED": `a "b" c`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want)+1 { // NAME too
		t.Errorf("parsed %d keys: %v", len(got), got)
	}
}
