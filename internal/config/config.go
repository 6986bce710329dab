// Package config loads devbundle's settings.
//
// Settings come from, in rising priority: built-in defaults, the user-level
// file (<config>/config.yaml), the project file devbundle.yaml (found in the
// current folder or the nearest parent, as Vagrant finds a Vagrantfile), and
// command-line flags. Loading goes load -> fill defaults -> validate, and
// validation reports every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ProjectFile is the name of the per-project config file.
const ProjectFile = "devbundle.yaml"

// Known service names.
const (
	ServiceDocker     = "docker"
	ServiceKubernetes = "kubernetes"
	ServiceOpenShift  = "openshift"
)

// Providers.
const (
	ProviderLibvirt    = "libvirt"
	ProviderVirtualBox = "virtualbox"
)

// DefaultBox is the box used when none is configured: Debian's official
// box, published with libvirt and virtualbox providers.
const DefaultBox = "debian/bookworm64"

// Config is the merged configuration of one machine.
type Config struct {
	Box        string     `yaml:"box" json:"box"`
	BoxVersion string     `yaml:"box_version" json:"box_version,omitempty"`
	BoxServer  string     `yaml:"box_server" json:"box_server,omitempty"`
	Provider   string     `yaml:"provider" json:"provider"`
	CPUs       int        `yaml:"cpus" json:"cpus"`
	Memory     int        `yaml:"memory" json:"memory"` // MiB
	Disk       int        `yaml:"disk" json:"disk"`     // GiB; 0 keeps the box's size
	Accel      string     `yaml:"accel" json:"accel"`   // auto, kvm or tcg
	Services   Services   `yaml:"services" json:"services"`
	Proxy      Proxy      `yaml:"proxy" json:"proxy"`
	Libvirt    Libvirt    `yaml:"libvirt" json:"libvirt"`
	VirtualBox VirtualBox `yaml:"virtualbox" json:"virtualbox"`
	SSH        SSH        `yaml:"ssh" json:"ssh"`
	Mirrors    Mirrors    `yaml:"mirrors" json:"mirrors"`
}

// Proxy is an HTTP(S) proxy passed into the VM and used for downloads.
type Proxy struct {
	URL      string `yaml:"url" json:"url,omitempty"`
	User     string `yaml:"user" json:"user,omitempty"`
	Password string `yaml:"password" json:"-"`
}

// ProxyURL returns the proxy URL with User and Password in it, or "".
func (c *Config) ProxyURL() string {
	if c.Proxy.URL == "" {
		return ""
	}
	u, err := url.Parse(c.Proxy.URL)
	if err != nil || c.Proxy.User == "" {
		return c.Proxy.URL
	}
	if c.Proxy.Password != "" {
		u.User = url.UserPassword(c.Proxy.User, c.Proxy.Password)
	} else {
		u.User = url.User(c.Proxy.User)
	}
	return u.String()
}

// VirtualBox holds the VirtualBox provider's settings.
type VirtualBox struct {
	// HostOnlyAdapter gives machines a second adapter on this host-only
	// adapter ("vboxnet0"; Windows and Linux hosts).
	HostOnlyAdapter string `yaml:"host_only_adapter" json:"host_only_adapter,omitempty"`
	// HostOnlyNetwork gives machines a second adapter on this host-only
	// network (VirtualBox 7 on macOS).
	HostOnlyNetwork string `yaml:"host_only_network" json:"host_only_network,omitempty"`
}

// Libvirt holds the libvirt provider's settings.
type Libvirt struct {
	// URI is the libvirt connection URI, such as qemu:///system,
	// qemu:///session or qemu+ssh://user@host/system.
	URI string `yaml:"uri" json:"uri"`
	// Network is "user" (user-mode networking, forwards on 127.0.0.1) or
	// "network" (a libvirt network, see NetworkName).
	Network string `yaml:"network" json:"network"`
	// NetworkName is the libvirt network used in "network" mode.
	NetworkName string `yaml:"network_name" json:"network_name"`
}

// SSH holds SSH settings.
type SSH struct {
	// InsecureKeyFile names the private key the box authorizes out of the
	// box, used for the first login instead of Vagrant's insecure key.
	InsecureKeyFile string `yaml:"insecure_key_file" json:"insecure_key_file,omitempty"`
}

// Mirrors replace the official hosts that client binaries come from.
type Mirrors struct {
	Kubectl string `yaml:"kubectl" json:"kubectl,omitempty"`
	OC      string `yaml:"oc" json:"oc,omitempty"`
	Docker  string `yaml:"docker" json:"docker,omitempty"`
}

// Services is a set of service names. In YAML it is a list or, as the
// Vagrant plugin took it, one comma-separated string ("docker, openshift").
type Services []string

// UnmarshalYAML accepts a sequence or a comma-separated string.
func (s *Services) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = ParseServices(n.Value)
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*s = normalizeServices(list)
		return nil
	default:
		return fmt.Errorf("line %d: services must be a list or a comma-separated string", n.Line)
	}
}

// ParseServices splits "docker, kubernetes" into a normalized list.
func ParseServices(v string) Services {
	return normalizeServices(strings.Split(v, ","))
}

func normalizeServices(in []string) Services {
	out := Services{}
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Sources records which files a Config came from, for messages.
type Sources struct {
	User    string // the user-level file, "" if none
	Project string // the project file, "" if none
}

// LoadOptions says where to look.
type LoadOptions struct {
	// UserFile is the user-level config file; a missing file is fine.
	UserFile string
	// Dir is where the search for devbundle.yaml starts.
	Dir string
	// ProjectFile, when set, is used instead of searching.
	ProjectFile string
}

// Load reads the user-level and project files into one Config. It does not
// fill defaults or validate: flags are applied first, then Finish.
func Load(opts LoadOptions) (*Config, Sources, error) {
	cfg := &Config{}
	var src Sources
	if opts.UserFile != "" {
		ok, err := decodeFile(opts.UserFile, cfg)
		if err != nil {
			return nil, src, err
		}
		if ok {
			src.User = opts.UserFile
		}
	}
	project := opts.ProjectFile
	if project == "" && opts.Dir != "" {
		project = FindProjectFile(opts.Dir)
	}
	if project != "" {
		ok, err := decodeFile(project, cfg)
		if err != nil {
			return nil, src, err
		}
		if !ok && opts.ProjectFile != "" {
			return nil, src, fmt.Errorf("config file %q does not exist", project)
		}
		if ok {
			src.Project = project
		}
	}
	return cfg, src, nil
}

// FindProjectFile returns the devbundle.yaml in dir or its nearest parent
// that has one, or "".
func FindProjectFile(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, ProjectFile)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// decodeFile merges the YAML file at path into cfg. Fields the file does
// not mention keep their values. Unknown fields are errors, so a typo does
// not pass silently.
func decodeFile(path string, cfg *Config) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read config: %w", err)
	}
	if err := Decode(data, cfg); err != nil {
		return false, fmt.Errorf("config file %q: %w", path, err)
	}
	return true, nil
}

// Decode merges YAML data into cfg, refusing unknown fields.
func Decode(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Finish fills defaults, then validates. It returns every problem at once.
func (c *Config) Finish() error {
	c.FillDefaults()
	return c.Validate()
}

// FillDefaults sets every unset field to its default.
func (c *Config) FillDefaults() {
	if c.Box == "" {
		c.Box = DefaultBox
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider(runtime.GOOS)
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.Memory == 0 {
		c.Memory = 2048
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.Services == nil {
		c.Services = Services{ServiceDocker}
	}
	if c.Libvirt.URI == "" {
		c.Libvirt.URI = "qemu:///system"
	}
	if c.Libvirt.Network == "" {
		c.Libvirt.Network = "user"
	}
	if c.Libvirt.NetworkName == "" {
		c.Libvirt.NetworkName = "default"
	}
}

// DefaultProvider is libvirt on Linux and VirtualBox elsewhere.
func DefaultProvider(goos string) string {
	if goos == "linux" {
		return ProviderLibvirt
	}
	return ProviderVirtualBox
}

// Validate checks every field and joins all problems, each naming its
// field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.Box) == "" {
		bad("box", "must not be empty")
	}
	switch c.Provider {
	case ProviderLibvirt, ProviderVirtualBox:
	default:
		bad("provider", "%q is not a provider; use %q or %q", c.Provider, ProviderLibvirt, ProviderVirtualBox)
	}
	if c.CPUs < 1 || c.CPUs > 256 {
		bad("cpus", "%d is out of range; use 1 to 256", c.CPUs)
	}
	if c.Memory < 256 {
		bad("memory", "%d MiB is too little; use at least 256 (MiB)", c.Memory)
	}
	if c.Disk < 0 {
		bad("disk", "%d GiB is negative; use 0 to keep the box's size, or a size in GiB", c.Disk)
	}
	switch c.Accel {
	case "auto", "kvm", "tcg":
	default:
		bad("accel", "%q is not an accelerator; use auto, kvm or tcg", c.Accel)
	}
	for _, s := range c.Services {
		switch s {
		case ServiceDocker, ServiceKubernetes, ServiceOpenShift:
		default:
			bad("services", "%q is not a service; use docker, kubernetes or openshift", s)
		}
	}
	if slices.Contains(c.Services, ServiceKubernetes) && slices.Contains(c.Services, ServiceOpenShift) {
		bad("services", "kubernetes and openshift exclude each other (both run a Kubernetes control plane); pick one")
	}
	if c.Proxy.URL != "" {
		if u, err := url.Parse(c.Proxy.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("proxy.url", "%q is not an http(s) URL such as http://proxy.example:3128", c.Proxy.URL)
		}
	}
	if (c.Proxy.User != "" || c.Proxy.Password != "") && c.Proxy.URL == "" {
		bad("proxy", "user or password set without proxy.url")
	}
	if c.BoxServer != "" {
		if u, err := url.Parse(c.BoxServer); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("box_server", "%q is not an http(s) URL", c.BoxServer)
		}
	}
	switch c.Libvirt.Network {
	case "user", "network":
	default:
		bad("libvirt.network", "%q is not a network mode; use user or network", c.Libvirt.Network)
	}
	if c.VirtualBox.HostOnlyAdapter != "" && c.VirtualBox.HostOnlyNetwork != "" {
		bad("virtualbox", "host_only_adapter and host_only_network are both set; set one (an adapter on Windows and Linux, a network with VirtualBox 7 on macOS)")
	}
	if c.Libvirt.URI != "" {
		if u, err := url.Parse(c.Libvirt.URI); err != nil || u.Scheme == "" {
			bad("libvirt.uri", "%q is not a libvirt URI such as qemu:///system", c.Libvirt.URI)
		}
	}
	for field, m := range map[string]string{"mirrors.kubectl": c.Mirrors.Kubectl, "mirrors.oc": c.Mirrors.OC, "mirrors.docker": c.Mirrors.Docker} {
		if m == "" {
			continue
		}
		if u, err := url.Parse(m); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad(field, "%q is not an http(s) URL", m)
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
