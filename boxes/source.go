package boxes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// DefaultServer is the public box registry used for user/name sources.
const DefaultServer = "https://vagrantcloud.com"

// maxCatalogSize bounds a catalog document.
const maxCatalogSize = 16 << 20

type sourceKind int

const (
	kindCatalog sourceKind = iota + 1
	kindURL
	kindFile
)

// resolved is what a box source turned out to be.
type resolved struct {
	kind       sourceKind
	catalogURL string   // kindCatalog
	catalog    *Catalog // kindCatalog
	boxURL     string   // kindCatalog, kindURL
	filePath   string   // kindFile
}

var shorthand = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// catalogURLFor gives the registry endpoint of user/name on server.
func catalogURLFor(server, name string) (string, error) {
	if server == "" {
		server = DefaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid box server %q: want an http(s) URL such as %s (set by --box-server, VAGRANT_SERVER_URL or box_server)", server, DefaultServer)
	}
	return strings.TrimRight(server, "/") + "/api/v2/vagrant/" + name, nil
}

// resolveSource works out what a box source is, fetching its catalog when
// it has one.
func resolveSource(ctx context.Context, opts *AddOptions) (*resolved, error) {
	src := strings.TrimSpace(opts.Source)
	if src == "" {
		return nil, errors.New("no box given: pass user/name, a catalog URL, a .box URL or a .box file")
	}
	if u, err := url.Parse(src); err == nil && u.Scheme == "file" {
		p := u.Path
		if runtime.GOOS == "windows" && len(p) >= 3 && p[0] == '/' && p[2] == ':' {
			p = p[1:]
		}
		return localFile(filepath.FromSlash(p))
	}
	if lower := strings.ToLower(src); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		u, err := url.Parse(src)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("invalid box URL %q", src)
		}
		if strings.HasSuffix(strings.ToLower(u.Path), ".box") {
			return &resolved{kind: kindURL, boxURL: src}, nil
		}
		cat, isCatalog, err := fetchCatalog(ctx, opts, src, true)
		if err != nil {
			return nil, err
		}
		if !isCatalog {
			return &resolved{kind: kindURL, boxURL: src}, nil
		}
		return &resolved{kind: kindCatalog, catalogURL: src, catalog: cat}, nil
	}
	if fi, err := os.Stat(src); err == nil && fi.Mode().IsRegular() {
		return localFile(src)
	}
	if shorthand.MatchString(src) && !strings.HasSuffix(strings.ToLower(src), ".box") {
		catURL, err := catalogURLFor(opts.Server, src)
		if err != nil {
			return nil, err
		}
		cat, _, err := fetchCatalog(ctx, opts, catURL, false)
		if err != nil {
			return nil, err
		}
		if cat.Name == "" {
			cat.Name = src
		}
		return &resolved{kind: kindCatalog, catalogURL: catURL, catalog: cat}, nil
	}
	if strings.HasSuffix(strings.ToLower(src), ".box") || strings.ContainsAny(src, `/\`) {
		return nil, fmt.Errorf("box file %q not found", src)
	}
	return nil, fmt.Errorf("unknown box source %q: give user/name, a catalog URL, a .box URL or a .box file", src)
}

func localFile(p string) (*resolved, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("box file %q not found", p)
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("box file %q is not a regular file", p)
	}
	return &resolved{kind: kindFile, filePath: abs}, nil
}

// fetchCatalog GETs a catalog. With sniff set, a response that is not JSON
// is reported as isCatalog=false (the URL is then a box), not an error.
func fetchCatalog(ctx context.Context, opts *AddOptions, rawURL string, sniff bool) (*Catalog, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, false, fmt.Errorf("invalid catalog URL %q: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	client := opts.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("fetch box catalog %q: %w", rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		switch {
		case resp.StatusCode == http.StatusNotFound:
			hint = "; check the box name and the box server (--box-server)"
		case resp.StatusCode >= 500:
			hint = "; the server failed, try again later"
		}
		return nil, false, fmt.Errorf("fetch box catalog %q: server answered %q%s", rawURL, resp.Status, hint)
	}
	br := io.LimitReader(resp.Body, maxCatalogSize+1)
	head := make([]byte, 512)
	n, _ := io.ReadFull(br, head)
	head = head[:n]
	if sniff && !looksLikeJSON(resp.Header.Get("Content-Type"), head) {
		return nil, false, nil
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		return nil, false, fmt.Errorf("fetch box catalog %q: %w", rawURL, err)
	}
	data := append(head, rest...)
	if len(data) > maxCatalogSize {
		return nil, false, fmt.Errorf("box catalog %q is larger than %d MiB", rawURL, maxCatalogSize>>20)
	}
	cat, err := ParseCatalog(data)
	if err != nil {
		return nil, false, fmt.Errorf("box catalog %q: %w", rawURL, err)
	}
	if final := resp.Request.URL; final.Scheme == "http" && !isLoopback(final.Hostname()) && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("catalog %s was fetched over plain HTTP: the checksums in it only prove the download matches what the network handed out", rawURL))
	}
	return cat, true, nil
}

func looksLikeJSON(contentType string, head []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return true
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// baseName gives the default name of a box from a file or URL path:
// the base name without ".box".
func baseName(p string) string {
	b := path.Base(filepath.ToSlash(p))
	return strings.TrimSuffix(strings.TrimSuffix(b, ".box"), ".BOX")
}
