// Package insecurekey finds the well-known "insecure" private key that
// published Vagrant boxes authorize for their first login. The key is
// public knowledge, but it is not devbundle's to ship: it is read at run
// time from a file the user names, from a local Vagrant installation, or
// from an HTTPS URL whose content must match a pinned SHA-256.
package insecurekey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

// Environment variables read by Load.
const (
	// EnvFile names a private key file to use instead of Vagrant's (the
	// config key ssh.insecure_key_file does the same).
	EnvFile = "DEVBUNDLE_INSECURE_KEY_FILE"
	// EnvURL names an HTTPS URL to fetch Vagrant's key from when no local
	// Vagrant installation has it; the content must match a pinned SHA-256.
	EnvURL = "DEVBUNDLE_INSECURE_KEY_URL"
)

// SuggestedURL is where Vagrant's own repository publishes the RSA key
// file, at the release Debian 12 packages. It is only ever fetched when
// the user configures it (EnvURL or Options.URL).
const SuggestedURL = "https://raw.githubusercontent.com/hashicorp/vagrant/v2.3.4/keys/vagrant"

// pinnedSHA256 maps the SHA-256 (hex) of each accepted downloaded key file
// to what it is. A downloaded file must match one of them.
var pinnedSHA256 = map[string]string{
	// keys/vagrant of Vagrant 2.3.4 as Debian 12's vagrant package ships
	// it: the RSA insecure private key, PEM, 1675 bytes.
	"c95842bf221d67a85a26796ba13fb58951985bffc01f399fa0d133b89fa08a52": "Vagrant's RSA insecure private key (keys/vagrant)",
}

// keyFileNames are the private key files a Vagrant keys folder holds:
// the RSA key under its historical name, and the per-type files newer
// releases add.
var keyFileNames = []string{"vagrant", "vagrant.key.rsa", "vagrant.key.ed25519"}

// maxKeyFileSize bounds what is read from a file or URL.
const maxKeyFileSize = 64 << 10

// Options say where to look. The zero value searches the environment and
// the usual Vagrant installation folders of this OS.
type Options struct {
	// File is a private key file to use, e.g. from the config key
	// ssh.insecure_key_file. It wins over everything else; when it cannot
	// be read, Load fails rather than trying other places.
	File string
	// URL is an HTTPS URL to fetch the key from when neither File, EnvFile
	// nor a local Vagrant installation has it. Empty uses EnvURL; if that
	// is empty too, nothing is downloaded.
	URL string
	// Getenv reads environment variables; nil uses os.Getenv.
	Getenv func(string) string
	// VagrantKeyDirs overrides the folders searched for a Vagrant
	// installation's keys (glob patterns); nil uses DefaultVagrantKeyDirs
	// for this OS, an empty non-nil slice searches nothing.
	VagrantKeyDirs []string
	// HTTPClient fetches URL; nil uses a client with a 60 s timeout.
	HTTPClient *http.Client
}

// Keys are the insecure keys found and where each came from.
type Keys struct {
	Signers []ssh.Signer
	// Sources lists the files or URL the signers were read from.
	Sources []string
}

// Load returns the insecure keys. It looks, in order, at opts.File, the
// file named by DEVBUNDLE_INSECURE_KEY_FILE, the keys of every local
// Vagrant installation found, and the configured URL. When none yields a
// key, the error lists every place tried and how to point devbundle at a
// key.
func Load(ctx context.Context, opts Options) (*Keys, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}

	// An explicitly named file is used alone: silently taking another key
	// would hide a typo.
	for _, named := range []struct{ path, from string }{
		{opts.File, "the configured insecure key file"},
		{getenv(EnvFile), EnvFile},
	} {
		if named.path == "" {
			continue
		}
		signers, err := readKeyFile(named.path)
		if err != nil {
			return nil, dberr.WithHint(fmt.Errorf("%s %q: %w", named.from, named.path, err),
				fmt.Sprintf("point %s (or ssh.insecure_key_file) at a readable, unencrypted SSH private key, or unset it to use Vagrant's key", EnvFile))
		}
		return &Keys{Signers: signers, Sources: []string{named.path}}, nil
	}

	var tried []string
	keys := &Keys{}
	dirs := opts.VagrantKeyDirs
	if dirs == nil {
		dirs = DefaultVagrantKeyDirs(runtime.GOOS, getenv)
	}
	for _, pattern := range dirs {
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			tried = append(tried, pattern)
			continue
		}
		slices.Sort(matches)
		slices.Reverse(matches) // newest Vagrant version first
		for _, dir := range matches {
			for _, name := range keyFileNames {
				p := filepath.Join(dir, name)
				signers, err := readKeyFile(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					tried = append(tried, fmt.Sprintf("%s (%v)", p, err))
					continue
				}
				if addUnique(keys, signers) {
					keys.Sources = append(keys.Sources, p)
				}
			}
		}
		if len(keys.Signers) == 0 {
			tried = append(tried, pattern)
		}
	}
	if len(keys.Signers) > 0 {
		return keys, nil
	}

	u := opts.URL
	if u == "" {
		u = getenv(EnvURL)
	}
	if u != "" {
		signers, err := fetch(ctx, opts.HTTPClient, u)
		if err == nil {
			return &Keys{Signers: signers, Sources: []string{u}}, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%v)", u, err))
	} else {
		tried = append(tried, fmt.Sprintf("no download: %s is not set", EnvURL))
	}
	return nil, dberr.WithHint(
		fmt.Errorf("vagrant's insecure ssh key, which boxes authorize for the first login, was not found; tried: %s", strings.Join(tried, "; ")),
		fmt.Sprintf("install Vagrant, or set %s to the box's private login key, or set %s=%s to download it (checked against a pinned SHA-256)", EnvFile, EnvURL, SuggestedURL))
}

// DefaultVagrantKeyDirs lists glob patterns of the keys folders of Vagrant
// installations on goos, the user's own copies first (Vagrant copies its
// key into VAGRANT_HOME, by default ~/.vagrant.d).
func DefaultVagrantKeyDirs(goos string, getenv func(string) string) []string {
	sep := "/"
	if goos == "windows" {
		sep = `\`
	}
	join := func(parts ...string) string { return strings.Join(parts, sep) }

	var dirs []string
	vagrantHome := getenv("VAGRANT_HOME")
	if vagrantHome == "" {
		home := getenv("HOME")
		if goos == "windows" {
			home = getenv("USERPROFILE")
		}
		if home != "" {
			vagrantHome = join(home, ".vagrant.d")
		}
	}
	if vagrantHome != "" {
		// insecure_private_keys/ holds vagrant.key.rsa and
		// vagrant.key.ed25519 in newer releases.
		dirs = append(dirs, join(vagrantHome, "insecure_private_keys"))
	}
	gems := func(root string) []string {
		return []string{
			join(root, "embedded", "gems", "gems", "vagrant-*", "keys"),
			join(root, "embedded", "gems", "*", "gems", "vagrant-*", "keys"),
		}
	}
	switch goos {
	case "windows":
		roots := []string{`C:\HashiCorp\Vagrant`}
		for _, env := range []string{"ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"} {
			if pf := getenv(env); pf != "" {
				roots = append(roots, join(pf, "Vagrant"))
			}
		}
		if sd := getenv("SystemDrive"); sd != "" && !strings.EqualFold(sd, "C:") {
			roots = append(roots, join(sd, "HashiCorp", "Vagrant"))
		}
		for _, r := range roots {
			dirs = append(dirs, gems(r)...)
		}
	case "darwin":
		dirs = append(dirs, gems("/opt/vagrant")...)
	default:
		dirs = append(dirs,
			"/usr/share/rubygems-integration/all/gems/vagrant-*/keys", // Debian, Ubuntu
			"/usr/share/vagrant/gems/gems/vagrant-*/keys",             // Fedora
			"/usr/share/gems/gems/vagrant-*/keys",
			"/usr/lib/ruby/gems/*/gems/vagrant-*/keys", // Arch
		)
		dirs = append(dirs, gems("/opt/vagrant")...) // HashiCorp's packages
	}
	return dirs
}

// readKeyFile parses every PEM private key in the file (some releases put
// more than one in a file).
func readKeyFile(path string) ([]ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("larger than %d bytes: not a private key", maxKeyFileSize)
	}
	return parseKeys(data)
}

func parseKeys(data []byte) ([]ssh.Signer, error) {
	var signers []ssh.Signer
	rest := data
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = next
		signer, err := ssh.ParsePrivateKey(pem.EncodeToMemory(block))
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, errors.New("the private key is passphrase-protected; devbundle needs an unencrypted key")
			}
			return nil, fmt.Errorf("not a usable ssh private key: %w", err)
		}
		signers = append(signers, signer)
	}
	if len(signers) == 0 {
		return nil, errors.New("no PEM private key in it")
	}
	return signers, nil
}

// addUnique appends the signers keys does not hold yet and reports whether
// it added any.
func addUnique(keys *Keys, signers []ssh.Signer) bool {
	added := false
	for _, s := range signers {
		blob := s.PublicKey().Marshal()
		if slices.ContainsFunc(keys.Signers, func(k ssh.Signer) bool {
			return bytes.Equal(k.PublicKey().Marshal(), blob)
		}) {
			continue
		}
		keys.Signers = append(keys.Signers, s)
		added = true
	}
	return added
}

// fetch downloads the key over HTTPS and accepts it only when its SHA-256
// is pinned.
func fetch(ctx context.Context, client *http.Client, rawURL string) ([]ssh.Signer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" {
		return nil, errors.New("only https URLs are accepted")
	}
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("larger than %d bytes: not a private key", maxKeyFileSize)
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if _, ok := pinnedSHA256[got]; !ok {
		return nil, fmt.Errorf("content's SHA-256 %s is not a pinned insecure key file", got)
	}
	return parseKeys(data)
}
