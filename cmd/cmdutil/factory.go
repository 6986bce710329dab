// Package cmdutil holds what every command shares: the Factory that builds
// dependencies lazily, and flag helpers.
package cmdutil

import (
	"net/http"
	"os"
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
	f.HTTPClient = sync.OnceValue(func() *http.Client { return newHTTPClient() })
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

// newHTTPClient is the client every download uses: the environment's
// proxy settings are honoured; redirects are bounded by net/http.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	return &http.Client{Transport: t}
}
