package clibins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/download"
	"github.com/devbundle/devbundle/internal/filelock"
)

// InstallOptions describe one install.
type InstallOptions struct {
	Client Client
	// Version is the wanted version, in any form Canonical accepts.
	Version string
	// Platform is the target system; the zero value means this host's
	// (runtime.GOOS, runtime.GOARCH).
	Platform Platform
	// BinDir is the cache of client binaries (paths.Paths.Bin).
	BinDir string
	// DownloadDir keeps partial downloads so an interrupted one resumes.
	DownloadDir string
	// Mirror is a base URL that replaces the official host (see Mirror);
	// "" means the official one.
	Mirror string
	// Dest, when set, is an existing folder the binary is copied into
	// (--path).
	Dest string
	// SearchPath is the PATH to look in for a matching client that is
	// already installed; "" means do not look. It is only consulted when
	// Dest is empty, the platform is this host's and the cache has no copy.
	SearchPath string
	// HTTPClient makes every request; nil means a default client.
	HTTPClient *http.Client
	// Insecure allows a plain-HTTP download that has no checksum.
	Insecure bool
	// Progress receives the download's progress; nil means none.
	Progress download.Progress
	// Log receives notes (what is fetched from where, what was verified).
	Log func(format string, args ...any)
	// Warn receives warnings (an unverified download, a retry).
	Warn func(msg string)
	// Pinned adds known SHA-256 digests of docker archives to the built-in
	// table (see pinnedSHA256), keyed by the path under
	// download.docker.com, e.g. "linux/static/stable/x86_64/docker-24.0.7.tgz".
	Pinned map[string]string
	// MaxAttempts and RetryDelay tune download retries (download.Options).
	MaxAttempts int
	RetryDelay  time.Duration
	// ProbeTimeout bounds running a client found on PATH to read its
	// version; 0 means 10 s.
	ProbeTimeout time.Duration
}

// Source says where the binary a Result names came from.
type Source string

// Sources of a Result.
const (
	FromDownload Source = "download" // fetched and verified by this call
	FromCache    Source = "cache"    // fetched by an earlier call
	FromPATH     Source = "PATH"     // a matching client already on PATH
)

// Result is an installed client.
type Result struct {
	Client   Client
	Version  string // canonical, e.g. "20.10.24"
	Platform Platform
	// Path is the binary to run: in the cache, in Dest, or on PATH.
	Path string
	From Source
	// Verified says how a download was checked ("sha256 from <url>",
	// "pinned sha256 (<source>)"); "" when it could not be, or when
	// nothing was downloaded.
	Verified string
}

// Install makes the client's version available for the platform: from the
// cache when it holds it (no network at all), else from a matching client
// already on PATH, else by downloading, verifying and caching it. With
// Dest set it then copies the binary there.
func Install(ctx context.Context, opts InstallOptions) (Result, error) {
	o := opts
	host := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	if o.Platform == (Platform{}) {
		o.Platform = host
	}
	ver, err := Canonical(o.Version)
	if err != nil {
		return Result{}, fmt.Errorf("%s version: %w", o.Client.Name, err)
	}
	if o.BinDir == "" {
		return Result{}, errors.New("install-cli: no cache folder given")
	}
	if o.Dest != "" {
		if o.Dest, err = checkDest(o.Dest); err != nil {
			return Result{}, err
		}
	}
	res := Result{Client: o.Client, Version: ver, Platform: o.Platform}
	bin := o.Client.Binary(o.Platform)
	cacheDir := filepath.Join(o.BinDir, o.Client.Name, ver, o.Platform.OS+"-"+o.Platform.Arch)
	cached := filepath.Join(cacheDir, bin)

	switch {
	case isExecutableFile(cached):
		res.From, res.Path = FromCache, cached
	case o.Dest == "" && o.SearchPath != "" && o.Platform == host:
		if p, ok := findOnPath(ctx, &o, bin, ver); ok {
			o.log("%s %s is already on your PATH at %s; using it", o.Client.Name, ver, p)
			res.From, res.Path = FromPATH, p
			return res, nil
		}
	}
	if res.Path == "" {
		fetched, verified, err := fetchIntoCache(ctx, &o, ver, cacheDir, cached)
		if err != nil {
			return Result{}, err
		}
		res.Path, res.From, res.Verified = cached, FromCache, verified
		if fetched {
			res.From = FromDownload
		}
	}
	if o.Dest != "" {
		dst := filepath.Join(o.Dest, bin)
		if err := copyExecutable(res.Path, dst); err != nil {
			return Result{}, err
		}
		res.Path = dst
	}
	return res, nil
}

func (o *InstallOptions) log(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

func (o *InstallOptions) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// checkDest checks --path: an existing folder. It returns it absolute.
func checkDest(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--path %q: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", dberr.WithHint(dberr.ServiceUnavailable("--path %q does not exist", dir),
			"create the folder first, or pass an existing one")
	case err != nil:
		return "", dberr.ServiceUnavailable("--path %q: %w", dir, err)
	case !fi.IsDir():
		return "", dberr.WithHint(dberr.ServiceUnavailable("--path %q is not a folder", dir),
			"pass the folder the binary should go into, not a file name")
	}
	return abs, nil
}

// isExecutableFile reports a regular file that may be run (on Windows,
// any regular file).
func isExecutableFile(p string) bool {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0
}

// fetchIntoCache downloads the client into cached unless another process
// did so while this one waited for the lock (fetched is then false).
func fetchIntoCache(ctx context.Context, o *InstallOptions, ver, cacheDir, cached string) (fetched bool, verified string, err error) {
	v, err := parseVersion(ver)
	if err != nil {
		return false, "", err
	}
	parent := filepath.Dir(cacheDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return false, "", fmt.Errorf("client cache: %w", err)
	}
	unlock, err := filelock.Lock(ctx, cacheDir+".lock")
	if err != nil {
		return false, "", err
	}
	defer func() { _ = unlock() }()
	if isExecutableFile(cached) {
		return false, "", nil
	}

	a, err := layout(o.Client, baseURL(o, v), v, o.Platform, pins(o.Pinned))
	if err != nil {
		return false, "", err
	}
	sum, verified, err := resolveChecksum(ctx, o, &a, ver)
	if err != nil {
		return false, "", err
	}
	warning, err := checkUnverified(o, a, sum, ver)
	if err != nil {
		return false, "", err
	}

	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(cacheDir)+"-")
	if err != nil {
		return false, "", fmt.Errorf("client cache: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	o.log("downloading %s %s for %s from %s", o.Client.Name, ver, o.Platform, a.url)
	got, err := fetchAsset(ctx, o, a, sum, warning, tmp)
	if err != nil {
		return false, "", err
	}
	if err := checkExecutable(got, o.Platform); err != nil {
		return false, "", fmt.Errorf("%s %s from %q: %w", o.Client.Name, ver, a.url, err)
	}
	if err := os.Chmod(got, 0o755); err != nil {
		return false, "", fmt.Errorf("client cache: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return false, "", fmt.Errorf("client cache: %w", err)
	}
	if err := os.Rename(got, cached); err != nil {
		return false, "", fmt.Errorf("client cache: %w", err)
	}
	if verified != "" {
		o.log("verified %s %s: %s", o.Client.Name, ver, verified)
	}
	return true, verified, nil
}

// baseURL is the mirror, or the official host for the client (and, for oc,
// the major version).
func baseURL(o *InstallOptions, v version) string {
	if o.Mirror != "" {
		return strings.TrimRight(o.Mirror, "/")
	}
	switch o.Client.Name {
	case nameDocker:
		return officialDocker
	case nameKubectl:
		return officialKubectl
	}
	if v.major == 3 {
		return officialOC3
	}
	return officialOC4
}

// pins is the built-in table plus the caller's entries.
func pins(extra map[string]string) map[string]pin {
	t := pinnedSHA256()
	for k, v := range extra {
		t[k] = pin{sha256: strings.ToLower(v), source: "InstallOptions.Pinned"}
	}
	return t
}

// checkUnverified applies devbundle's policy to a download without a
// checksum (docker without a pinned digest), in install-cli's words, and
// returns download.CheckPolicy's own warning so that it is not repeated.
func checkUnverified(o *InstallOptions, a asset, sum download.Checksum, ver string) (string, error) {
	warning, err := download.CheckPolicy(a.url, sum, o.Insecure)
	if err != nil {
		var pe *download.PolicyError
		if errors.As(err, &pe) {
			return "", dberr.WithHint(
				fmt.Errorf("refusing to download %s %s from %q over plain HTTP: docker publishes no checksum and devbundle has no pinned digest for this file, so it could not be verified", o.Client.Name, ver, a.url),
				fmt.Sprintf("use an https mirror (%s or mirrors.%s in the config), or pass --insecure to accept the risk", o.Client.MirrorEnv, o.Client.Name))
		}
		return "", err
	}
	if warning != "" {
		how := "over HTTPS, so only a compromised or impersonated server could hand out a tampered file"
		if strings.HasPrefix(a.url, "http:") {
			how = "over plain HTTP (--insecure): anyone on the network path could tamper with it"
		}
		o.warn(fmt.Sprintf("%s %s cannot be verified: docker publishes no checksum and devbundle has no pinned digest for %s; it is fetched %s", o.Client.Name, ver, a.url, how))
	}
	return warning, nil
}

// noBuild is the error for a release whose checksum list lacks the
// platform's file.
func noBuild(c Client, ver string, p Platform, why string) error {
	return dberr.WithHint(dberr.ServiceUnavailable("%s %s is not published for %s: %s", c.Name, ver, p, why),
		"pass --cli-version with a version that has a build for this system")
}

// notFound is the error for a release the source does not have.
func notFound(c Client, ver string, p Platform, url string) error {
	return dberr.WithHint(
		dberr.ServiceUnavailable("%s %s for %s is not available: %q was not found (HTTP 404)", c.Name, ver, p, url),
		"pass --cli-version with a version the source publishes (or set a mirror that has this one)")
}
