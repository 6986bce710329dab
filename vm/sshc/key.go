package sshc

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/dberr"
)

// LoadOrCreateKey returns the machine's private key stored at path,
// creating a new ed25519 key there when the file does not exist: the
// private key in OpenSSH format with mode 0600, and its public half in
// authorized_keys format at path+".pub". comment is written into both.
//
// On Unix an existing key file readable by others is tightened to 0600,
// since OpenSSH refuses such a file as an IdentityFile.
func LoadOrCreateKey(path, comment string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		signer, perr := ssh.ParsePrivateKey(data)
		if perr != nil {
			return nil, dberr.WithHint(fmt.Errorf("machine key %q cannot be read: %w", path, perr),
				"the machine's login key is damaged: run \"devbundle destroy\" and \"devbundle up\"")
		}
		if err := tightenKeyMode(path); err != nil {
			return nil, err
		}
		if err := writePublicKey(path, signer.PublicKey(), comment, false); err != nil {
			return nil, err
		}
		return signer, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read machine key: %w", err)
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate machine key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encode machine key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create machine key: %w", err)
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("create machine key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("load machine key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("load machine key: %w", err)
	}
	if err := writePublicKey(path, sshPub, comment, true); err != nil {
		return nil, err
	}
	return signer, nil
}

// AuthorizedKeyLine renders key as one authorized_keys line (with a
// trailing newline), with comment after it when comment is not empty.
func AuthorizedKeyLine(key ssh.PublicKey, comment string) string {
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
	comment = strings.Join(strings.Fields(comment), " ")
	if comment != "" {
		line += " " + comment
	}
	return line + "\n"
}

// writePublicKey writes path+".pub" when it is missing or always.
func writePublicKey(path string, key ssh.PublicKey, comment string, always bool) error {
	pubPath := path + ".pub"
	if !always {
		if _, err := os.Stat(pubPath); err == nil {
			return nil
		}
	}
	if err := atomicfile.WriteFile(pubPath, []byte(AuthorizedKeyLine(key, comment)), 0o644); err != nil {
		return fmt.Errorf("write machine public key: %w", err)
	}
	return nil
}

func tightenKeyMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("machine key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("machine key %q is readable by others and cannot be made private: %w", path, err)
		}
	}
	return nil
}
