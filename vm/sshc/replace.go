package sshc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

// MachineKeys are the keys EnsureMachineKey logs in with.
type MachineKeys struct {
	// Machine is the machine's own key (LoadOrCreateKey). It is always
	// offered first.
	Machine ssh.Signer
	// Comment ends the machine key's authorized_keys line, e.g.
	// "devbundle machine default".
	Comment string
	// Insecure are the box's well-known login keys. When the server
	// accepts one of them, the machine key is installed and they are
	// removed from the login user's authorized_keys. Empty once a machine
	// is known to have its own key.
	Insecure []ssh.Signer
}

// verifyAttempts bounds how often the new key is tried after installing
// it; the server is known to be up by then, so only network hiccups are
// retried, never a refused key.
const verifyAttempts = 3

// EnsureMachineKey waits for the guest's sshd like Wait, logging in with
// the machine key or, failing that, one of the insecure keys. When an
// insecure key got in, it replaces the insecure keys in the login user's
// ~/.ssh/authorized_keys with the machine key, Vagrant's first-boot step:
//
//   - the new file is written beside the old one and renamed over it in one
//     shell command (mode 0600, folder 0700), and only if it arrived whole,
//     so an interrupted run leaves either the old file or the new one;
//   - the machine key is then verified with a new connection; if the
//     server refuses it, the old file is put back, so the user is never
//     locked out.
//
// It is idempotent: run again after an interruption, the machine key is
// tried first and, if it already works, nothing is changed. The returned
// client is logged in with the machine key. opts.Signers must be empty.
func EnsureMachineKey(ctx context.Context, opts WaitOptions, keys MachineKeys) (*Client, error) {
	if keys.Machine == nil {
		return nil, errors.New("no machine key given")
	}
	if len(opts.Signers) != 0 {
		return nil, errors.New("EnsureMachineKey takes its keys from MachineKeys, not WaitOptions.Signers")
	}
	wo := opts
	wo.Signers = append([]ssh.Signer{keys.Machine}, keys.Insecure...)
	c, err := Wait(ctx, wo)
	if err != nil {
		return nil, err
	}
	machinePub := keys.Machine.PublicKey()
	if c.AuthKey() == nil || bytes.Equal(c.AuthKey().Marshal(), machinePub.Marshal()) {
		return c, nil
	}

	// Logged in with an insecure key: install the machine key.
	old, err := installMachineKey(ctx, c, keys)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	vo := opts
	vo.Signers = []ssh.Signer{keys.Machine}
	nc, verr := verifyLogin(ctx, vo)
	if verr == nil {
		_ = c.Close()
		return nc, nil
	}
	if ctx.Err() != nil {
		// Interrupted: the machine key is in place; the next run finds it
		// works.
		_ = c.Close()
		return nil, fmt.Errorf("verify the new ssh key on %s: %w", opts.Addr, ctx.Err())
	}
	// The server does not take the new key: put the old file back through
	// the connection still open with the insecure key.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rerr := writeAuthorizedKeys(rctx, c, old, "")
	_ = c.Close()
	if rerr != nil {
		return nil, fmt.Errorf("the guest's sshd at %s refused the new machine key (%w), and restoring the old authorized_keys failed: %w", opts.Addr, verr, rerr)
	}
	return nil, dberr.WithHint(
		fmt.Errorf("the guest's sshd at %s refused the new machine key after it was installed (the old authorized_keys was restored): %w", opts.Addr, verr),
		"the box's sshd may not read ~/.ssh/authorized_keys (AuthorizedKeysFile); check the box's sshd configuration")
}

func verifyLogin(ctx context.Context, opts WaitOptions) (*Client, error) {
	var err error
	for i := 0; i < verifyAttempts; i++ {
		var c *Client
		c, err = dialOnce(ctx, opts)
		if err == nil {
			return c, nil
		}
		if isAuthError(err) || isHostKeyError(err) || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	return nil, err
}

// readAuthorizedKeysCmd prints the login user's authorized_keys, or
// nothing when the file does not exist.
const readAuthorizedKeysCmd = `sh -c 'f="$HOME/.ssh/authorized_keys"; if [ -f "$f" ]; then cat -- "$f"; fi'`

// installMachineKey rewrites authorized_keys with the machine key in and
// the insecure keys out, and returns the old content.
func installMachineKey(ctx context.Context, c *Client, keys MachineKeys) ([]byte, error) {
	old, err := c.Output(ctx, readAuthorizedKeysCmd)
	if err != nil {
		return nil, fmt.Errorf("read authorized_keys of %q on %s: %w", c.user, c.addr, err)
	}
	remove := make([]ssh.PublicKey, len(keys.Insecure))
	for i, s := range keys.Insecure {
		remove[i] = s.PublicKey()
	}
	line := AuthorizedKeyLine(keys.Machine.PublicKey(), keys.Comment)
	content, _ := rewriteAuthorizedKeys(old, keys.Machine.PublicKey(), line, remove)
	if err := writeAuthorizedKeys(ctx, c, content, strings.TrimSuffix(line, "\n")); err != nil {
		return nil, err
	}
	return old, nil
}

// writeAuthorizedKeys replaces the login user's authorized_keys with
// content in one command. When mustHave is set, the new file is moved into
// place only if it holds that exact line, which the content ends with: a
// transfer cut short leaves the old file untouched.
func writeAuthorizedKeys(ctx context.Context, c *Client, content []byte, mustHave string) error {
	check := ""
	if mustHave != "" {
		check = `grep -qxF -- ` + Quote(mustHave) + ` "$t" || { echo "devbundle: the new authorized_keys arrived incomplete" >&2; exit 3; }; `
	}
	script := `set -e; umask 077; d="$HOME/.ssh"; mkdir -p -- "$d"; chmod 700 -- "$d"; ` +
		`t="$d/.authorized_keys.devbundle-tmp"; cat > "$t"; ` + check +
		`chmod 600 -- "$t"; mv -f -- "$t" "$d/authorized_keys"; ` +
		`if command -v restorecon >/dev/null 2>&1; then restorecon -R -- "$d" >/dev/null 2>&1 || true; fi`
	var stderr bytes.Buffer
	code, err := c.Run(ctx, "sh -c "+Quote(script), RunOptions{Stdin: bytes.NewReader(content), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("write authorized_keys of %q on %s: %w", c.user, c.addr, err)
	}
	if code != 0 {
		return fmt.Errorf("write authorized_keys of %q on %s: exit status %d: %s", c.user, c.addr, code, trimForError(stderr.String()))
	}
	return nil
}
