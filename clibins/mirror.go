package clibins

import (
	"net"
	"net/url"
	"strings"

	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/internal/dberr"
)

// Mirror returns the mirror base URL for c: the environment variable
// (DEVBUNDLE_MIRROR_DOCKER, DEVBUNDLE_MIRROR_KUBECTL, DEVBUNDLE_MIRROR_OC)
// wins over the config's mirrors section; "" means the official host. The
// mirror holds the official path layout under its base URL. A value that is
// not an http(s) URL is a usage error naming where it came from.
func Mirror(c Client, getenv func(string) string, m config.Mirrors) (string, error) {
	value, from := getenv(c.MirrorEnv), c.MirrorEnv
	if value == "" {
		from = "mirrors." + c.Name
		switch c.Name {
		case nameDocker:
			value = m.Docker
		case nameKubectl:
			value = m.Kubectl
		case nameOC:
			value = m.OC
		}
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return "", nil
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", dberr.Usage("%s: %q is not a mirror base URL such as https://mirror.example.com/docker (http or https, no query)", from, value)
	}
	return strings.TrimRight(value, "/"), nil
}

// loopbackURL reports a URL on this machine's loopback.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
