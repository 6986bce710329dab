package clibins

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/devbundle/devbundle/services"
)

// canonicalVersion is how versions are kept: X.Y.Z, an optional
// pre-release tag, no leading "v".
var canonicalVersion = regexp.MustCompile(`^([0-9]{1,5})\.([0-9]{1,5})\.[0-9]{1,5}(?:-(?:alpha|beta|rc)\.?[0-9]{1,5})?$`)

// Canonical turns a version as users, servers and clients write it into the
// form used in URLs and the cache: "v1.28.3+k3s1" -> "1.28.3",
// "20.10.24+dfsg1" -> "20.10.24". It refuses anything that is not a full
// release number, so that no other text reaches a URL or a path.
func Canonical(v string) (string, error) {
	up := services.UpstreamVersion(strings.TrimSpace(v))
	up = strings.TrimPrefix(up, "v")
	if up == "" || !canonicalVersion.MatchString(up) {
		return "", fmt.Errorf("%q is not a full release number such as 1.28.3 or 20.10.24", v)
	}
	return up, nil
}

// probeArgs are the arguments that make a client print its own version
// without contacting any server. `docker --version` prints the same
// Client.Version as `docker version --format '{{.Client.Version}}'`, which
// would first try the daemon DOCKER_HOST names and wait for it.
func probeArgs(name string) []string {
	switch name {
	case nameDocker:
		return []string{"--version"}
	case nameKubectl:
		return []string{"version", "--client", "-o", "json"}
	default:
		return []string{"version", "--client"}
	}
}

var dockerVersionLine = regexp.MustCompile(`(?i)^docker version ([^\s,]+)`)

// parseClientVersion reads the version a client printed for probeArgs and
// returns it in canonical form.
func parseClientVersion(name string, out []byte) (string, error) {
	raw := ""
	switch name {
	case nameDocker:
		// "Docker version 20.10.24+dfsg1, build 297e128"
		if m := dockerVersionLine.FindSubmatch(bytes.TrimSpace(out)); m != nil {
			raw = string(m[1])
		}
	case nameKubectl:
		var v struct {
			ClientVersion struct {
				GitVersion string `json:"gitVersion"`
			} `json:"clientVersion"`
		}
		if err := json.Unmarshal(out, &v); err == nil {
			raw = v.ClientVersion.GitVersion
		}
	case nameOC:
		// 4.x: "Client Version: 4.14.3"; 3.x: "oc v3.11.0+0cbc58b".
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() && raw == "" {
			line := strings.TrimSpace(sc.Text())
			if rest, ok := strings.CutPrefix(line, "Client Version:"); ok {
				raw = strings.TrimSpace(rest)
			} else if rest, ok := strings.CutPrefix(line, "oc "); ok {
				raw = strings.TrimSpace(rest)
			}
		}
	}
	if raw == "" {
		return "", fmt.Errorf("no version in the output of %s %s: %q", name, strings.Join(probeArgs(name), " "), firstLine(out))
	}
	return Canonical(raw)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(bytes.TrimSpace(b)), "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
