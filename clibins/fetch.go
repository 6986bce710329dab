package clibins

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/devbundle/devbundle/internal/archive"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/download"
)

// maxChecksumFile bounds a checksum file (sha256sum.txt lists a few dozen
// files).
const maxChecksumFile = 1 << 20

// resolveChecksum finds the expected digest of a: pinned, or read from the
// checksum file the source publishes. For oc 3.x it also picks the archive
// named in CHECKSUM and sets a.url and a.format. verified describes the
// source of the digest; it is "" when there is none.
func resolveChecksum(ctx context.Context, o *InstallOptions, a *asset, ver string) (download.Checksum, string, error) {
	if a.pinned != "" {
		sum, err := download.NewChecksum("sha256", a.pinned)
		if err != nil {
			return download.Checksum{}, "", fmt.Errorf("pinned digest for %q: %w", a.url, err)
		}
		return sum, fmt.Sprintf("pinned sha256 (%s)", a.pinnedBy), nil
	}
	if a.sumURL == "" {
		return download.Checksum{}, "", nil
	}
	data, err := fetchSmall(ctx, o, a.sumURL, ver)
	if err != nil {
		return download.Checksum{}, "", err
	}
	var hexSum string
	switch {
	case a.pickFromList:
		// oc 3.x: the release's only reliable list of its file names.
		suffix, _ := oc3Suffix(o.Platform)
		prefix := "openshift-origin-client-tools-v" + ver + "-"
		list, err := parseSumList(data)
		if err != nil {
			return download.Checksum{}, "", fmt.Errorf("checksum file %q: %w", a.sumURL, err)
		}
		var names []string
		for name := range list {
			if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) && !strings.ContainsAny(name, "/\\") {
				names = append(names, name)
			}
		}
		if len(names) != 1 {
			return download.Checksum{}, "", noBuild(o.Client, ver, o.Platform, fmt.Sprintf("%q lists %d files named %s*%s, not exactly one", a.sumURL, len(names), prefix, suffix))
		}
		a.url += names[0]
		a.format = formatOf(names[0])
		hexSum = list[names[0]]
	case a.sumName != "":
		list, err := parseSumList(data)
		if err != nil {
			return download.Checksum{}, "", fmt.Errorf("checksum file %q: %w", a.sumURL, err)
		}
		h, ok := list[a.sumName]
		if !ok {
			return download.Checksum{}, "", noBuild(o.Client, ver, o.Platform, fmt.Sprintf("%q does not list %q", a.sumURL, a.sumName))
		}
		hexSum = h
	default:
		// kubectl's .sha256: the digest alone.
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			return download.Checksum{}, "", fmt.Errorf("checksum file %q is empty", a.sumURL)
		}
		hexSum = fields[0]
	}
	sum, err := download.NewChecksum("sha256", hexSum)
	if err != nil {
		return download.Checksum{}, "", fmt.Errorf("checksum file %q: %w", a.sumURL, err)
	}
	if u := a.sumURL; strings.HasPrefix(u, "http:") && !loopbackURL(u) {
		o.warn(fmt.Sprintf("checksum file %s was fetched over plain HTTP: it only proves the download matches what the network handed out", u))
	}
	return sum, "sha256 from " + a.sumURL, nil
}

// parseSumList reads "HEX  NAME" lines (sha256sum's format; "HEX *NAME"
// too) into name -> hex.
func parseSumList(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxChecksumFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		if !ok || len(h) != 64 || name == "" {
			return nil, fmt.Errorf("line %q is not \"SHA256  FILE\"", firstLine([]byte(line)))
		}
		out[name] = strings.ToLower(h)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("it lists no files")
	}
	return out, nil
}

// fetchSmall GETs a checksum file. A 404 is the "no such release" error;
// an HTML page (a portal or a soft 404) is refused.
func fetchSmall(ctx context.Context, o *InstallOptions, url, ver string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("checksum file %q: %w", url, err)
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch checksum file %q: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, notFound(o.Client, ver, o.Platform, url)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch checksum file %q: server answered %q", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxChecksumFile+1))
	if err != nil {
		return nil, fmt.Errorf("fetch checksum file %q: %w", url, err)
	}
	if len(data) > maxChecksumFile {
		return nil, fmt.Errorf("checksum file %q is larger than %d KiB", url, maxChecksumFile>>10)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" || looksLikeHTML(data) {
		return nil, notAFile(o.Client, ver, url, "checksum file")
	}
	return data, nil
}

func looksLikeHTML(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	return len(t) > 0 && t[0] == '<'
}

func notAFile(c Client, ver, url, what string) error {
	return dberr.WithHint(dberr.ServiceUnavailable("%s %s: %q is an HTML page, not a %s; the mirror URL or the version is wrong", c.Name, ver, url, what),
		"check the mirror setting, or pass --cli-version with a version the source publishes")
}

// fetchAsset downloads a into tmp, verifying it against sum, and returns
// the path of the binary in tmp. warning is CheckPolicy's warning, already
// given in install-cli's words, so that it is not repeated.
func fetchAsset(ctx context.Context, o *InstallOptions, a asset, sum download.Checksum, warning, tmp string) (string, error) {
	key := sha256.Sum256([]byte(a.url))
	partial := filepath.Join(o.DownloadDir, hex.EncodeToString(key[:8])+"-"+path.Base(a.url)+".partial")
	if o.DownloadDir == "" {
		partial = filepath.Join(tmp, "download.partial")
	}
	member := o.Client.Binary(o.Platform)
	unpacked := filepath.Join(tmp, "unpacked")

	var (
		file   *os.File
		stream *archive.Stream
		head   *headCheck
	)
	switch a.format {
	case formatBinary:
		f, err := os.OpenFile(filepath.Join(tmp, member), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("client cache: %w", err)
		}
		file = f
		head = &headCheck{w: f, check: func(b []byte) error { return executableMagic(b, o.Platform) }}
	case formatZip:
		f, err := os.OpenFile(filepath.Join(tmp, "download.zip"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("client cache: %w", err)
		}
		file = f
		head = &headCheck{w: f, check: zipMagic}
	default:
		stream = archive.NewTarStream(ctx, unpacked)
		head = &headCheck{w: stream, check: gzipMagic}
	}
	defer func() {
		if file != nil {
			_ = file.Close()
		}
	}()

	res, err := download.Fetch(ctx, download.Options{
		URL:         a.url,
		Checksum:    sum,
		Insecure:    o.Insecure,
		PartialPath: partial,
		Sink:        head,
		Client:      o.HTTPClient,
		Progress:    o.Progress,
		Warn: func(msg string) {
			if msg != warning {
				o.warn(msg)
			}
		},
		MaxAttempts: o.MaxAttempts,
		RetryDelay:  o.RetryDelay,
		UserAgent:   "devbundle",
	})
	if err == nil {
		err = head.end()
	}
	if err != nil {
		if stream != nil {
			stream.Abort(err)
		}
		if head.failed {
			// The bytes are not what was asked for: resuming them later
			// would only repeat the refusal.
			_ = download.RemovePartial(partial)
		}
		var se *download.StatusError
		if errors.As(err, &se) && (se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusGone) {
			return "", notFound(o.Client, o.versionText(), o.Platform, a.url)
		}
		var he *htmlError
		if errors.As(err, &he) {
			return "", notAFile(o.Client, o.versionText(), a.url, he.what)
		}
		return "", err
	}

	switch a.format {
	case formatBinary:
		if err := file.Close(); err != nil {
			return "", fmt.Errorf("client cache: %w", err)
		}
		file = nil
		return filepath.Join(tmp, member), nil
	case formatZip:
		if err := archive.ExtractZip(ctx, file, res.Size, unpacked); err != nil {
			return "", fmt.Errorf("unpack %q: %w", a.url, err)
		}
	default:
		if err := stream.Close(); err != nil {
			return "", fmt.Errorf("unpack %q: %w", a.url, err)
		}
	}
	return findMember(unpacked, member, a.url)
}

func (o *InstallOptions) versionText() string {
	v, err := Canonical(o.Version)
	if err != nil {
		return o.Version
	}
	return v
}

// findMember returns the regular file named member nearest the top of dir.
func findMember(dir, member, url string) (string, error) {
	best, bestDepth, count := "", 0, 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.EqualFold(d.Name(), member) {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		depth := strings.Count(filepath.ToSlash(rel), "/")
		switch {
		case best == "" || depth < bestDepth:
			best, bestDepth, count = p, depth, 1
		case depth == bestDepth:
			count++
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("unpack %q: %w", url, err)
	}
	if best == "" {
		return "", fmt.Errorf("the archive %q holds no file named %q", url, member)
	}
	if count > 1 {
		return "", fmt.Errorf("the archive %q holds %d files named %q at the same depth; refusing to guess", url, count, member)
	}
	return best, nil
}

// copyExecutable copies src to dst atomically (a temporary file in dst's
// folder, then a rename), mode 0755.
func copyExecutable(src, dst string) (err error) {
	if sameFile(src, dst) {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %q: %w", src, err)
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("install into %q: %w", filepath.Dir(dst), err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	if err = os.Chmod(tmp.Name(), 0o755); err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	return nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
