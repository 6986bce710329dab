// Package cmdutil holds what every command shares: the Factory that builds
// dependencies lazily, and flag helpers.
package cmdutil

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/internal/iostreams"
	"github.com/devbundle/devbundle/internal/paths"
)

// Factory builds the dependencies commands need, each once, on first use.
// Tests replace any field.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Getenv reads the environment (os.Getenv unless a test injects one).
	Getenv func(string) string
	// Getwd is where the project file search starts.
	Getwd func() (string, error)
	// Version is devbundle's own version.
	Version string

	// Machine is the --machine flag's value, set before a command runs.
	Machine string
	// ConfigFile is the --config flag's value: a project file to use
	// instead of searching for devbundle.yaml.
	ConfigFile string

	Paths      func() (paths.Paths, error)
	Config     func() (*config.Config, config.Sources, error)
	HTTPClient func() *http.Client
}

// New returns the Factory the real program uses.
func New(streams *iostreams.IOStreams, version string) *Factory {
	f := &Factory{
		IOStreams: streams,
		Getenv:    os.Getenv,
		Getwd:     os.Getwd,
		Version:   version,
		Machine:   "default",
	}
	f.Paths = sync.OnceValues(func() (paths.Paths, error) { return paths.New(f.Getenv) })
	f.Config = func() (*config.Config, config.Sources, error) { return loadConfig(f) }
	f.HTTPClient = sync.OnceValue(func() *http.Client { return newHTTPClient(f.configuredProxy(), f.Getenv) })
	return f
}

// loadConfig reads the user and project files. Callers apply their flags,
// then call Finish on the result.
func loadConfig(f *Factory) (*config.Config, config.Sources, error) {
	p, err := f.Paths()
	if err != nil {
		return nil, config.Sources{}, err
	}
	dir, err := f.Getwd()
	if err != nil {
		return nil, config.Sources{}, err
	}
	return config.Load(config.LoadOptions{
		UserFile:    p.UserConfig(),
		Dir:         dir,
		ProjectFile: f.ConfigFile,
	})
}

// configuredProxy is the proxy URL from the config files, with its user
// and password, or "". A config that does not load gives "": the command
// that needs the config reports that error itself.
func (f *Factory) configuredProxy() string {
	cfg, _, err := f.Config()
	if err != nil {
		return ""
	}
	return cfg.ProxyURL()
}

// newHTTPClient is the client every download uses. The proxy comes from
// the config (proxy.url, with proxy.user and proxy.password) when set,
// else from the environment (HTTPS_PROXY, HTTP_PROXY); NO_PROXY is
// honoured either way, and loopback addresses are always reached directly.
// Redirects are bounded by net/http.
func newHTTPClient(configured string, getenv func(string) string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if u, err := url.Parse(configured); configured != "" && err == nil && u.Host != "" {
		noProxy := getenv("NO_PROXY")
		if noProxy == "" {
			noProxy = getenv("no_proxy")
		}
		t.Proxy = func(req *http.Request) (*url.URL, error) {
			if bypassProxy(req.URL.Hostname(), noProxy) {
				return nil, nil
			}
			return u, nil
		}
	}
	return &http.Client{Transport: t}
}

// bypassProxy reports whether host is reached directly: a loopback
// address or localhost, or a NO_PROXY match ("*", a host name and its
// subdomains, with or without a leading dot, an IP address or a CIDR
// range).
func bypassProxy(host, noProxy string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return true
	}
	for _, entry := range strings.Split(noProxy, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if entry == "" {
			continue
		}
		if entry == "*" {
			return true
		}
		if h, _, err := net.SplitHostPort(entry); err == nil {
			entry = h // a port in the entry: match the host on any port
		}
		if _, cidr, err := net.ParseCIDR(entry); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		if eip := net.ParseIP(entry); eip != nil {
			if ip != nil && eip.Equal(ip) {
				return true
			}
			continue
		}
		domain := strings.TrimPrefix(entry, ".")
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return true
		}
	}
	return false
}
