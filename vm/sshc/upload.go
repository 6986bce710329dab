package sshc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
)

// UploadOptions change how Upload writes a file.
type UploadOptions struct {
	// Sudo writes the file as root through "sudo -n" (no password prompt:
	// the login user needs passwordless sudo, as Vagrant boxes give it).
	Sudo bool
}

// Upload writes data to path in the guest with the given permission bits,
// atomically: the content goes to a temporary file in the same folder,
// which is then renamed over path, so a reader sees the old file or the
// whole new one. A relative path is relative to the login user's home. The
// folder must exist.
func (c *Client) Upload(ctx context.Context, path string, data []byte, mode os.FileMode, opts UploadOptions) error {
	if path == "" || strings.ContainsAny(path, "\x00\n") {
		return fmt.Errorf("upload to %q: the guest path is empty or has a NUL or newline in it", path)
	}
	cmd := uploadCommand(path, mode, opts)
	var stderr bytes.Buffer
	code, err := c.Run(ctx, cmd, RunOptions{Stdin: bytes.NewReader(data), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("upload %q to %s: %w", path, c.addr, err)
	}
	if code != 0 {
		return fmt.Errorf("upload %q to %s: exit status %d: %s", path, c.addr, code, trimForError(stderr.String()))
	}
	return nil
}

// uploadCommand builds the one shell command that writes standard input to
// path atomically.
func uploadCommand(path string, mode os.FileMode, opts UploadOptions) string {
	p := Quote(path)
	script := strings.Join([]string{
		"set -e",
		"umask 077",
		`d=$(dirname -- ` + p + `)`,
		`t=$(mktemp "$d/.devbundle-upload.XXXXXX")`,
		`trap 'rm -f -- "$t"' EXIT`,
		`cat > "$t"`,
		fmt.Sprintf(`chmod %04o "$t"`, mode.Perm()),
		`mv -f -- "$t" ` + p,
		`trap - EXIT`,
	}, "; ")
	cmd := "sh -c " + Quote(script)
	if opts.Sudo {
		cmd = "sudo -n " + cmd
	}
	return cmd
}

// Quote quotes s for a POSIX shell, as every command line sent over SSH
// needs: the whole in single quotes, each single quote inside closed,
// escaped with a backslash and reopened.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
