package sshc

import (
	"bytes"

	"golang.org/x/crypto/ssh"
)

// rewriteAuthorizedKeys returns the content of an authorized_keys file
// with every line whose key is one of remove taken out (matched by key
// blob, whatever the line's options or comment) and addLine appended when
// add is not already authorized. Lines it cannot parse (comments, blank
// lines, keys of unknown types) are kept as they are. It also reports how
// many lines were removed.
func rewriteAuthorizedKeys(old []byte, add ssh.PublicKey, addLine string, remove []ssh.PublicKey) (content []byte, removed int) {
	drop := make(map[string]bool, len(remove))
	for _, k := range remove {
		drop[string(k.Marshal())] = true
	}
	addBlob := string(add.Marshal())

	var out bytes.Buffer
	hasAdd := false
	lines := bytes.SplitAfter(old, []byte("\n"))
	for _, line := range lines {
		if len(line) == 0 {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err == nil {
			blob := string(key.Marshal())
			if drop[blob] {
				removed++
				continue
			}
			if blob == addBlob {
				hasAdd = true
			}
		}
		out.Write(line)
	}
	if !hasAdd {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteString(addLine)
	}
	return out.Bytes(), removed
}
