// Package clibins installs the docker, kubectl and oc clients that match the
// servers in a machine: it knows each client's official download layout for
// linux, darwin and windows on amd64 and arm64, fetches the published
// checksums, downloads with resume, verifies before anything is cached,
// unpacks safely and keeps only the binary, in
// <cache>/bin/<client>/<version>/<os>-<arch>/<binary>.
//
// Sources and checksums, per client (a mirror base URL replaces the host;
// the path layout under it stays the official one):
//
//	kubectl  https://dl.k8s.io/release/vX.Y.Z/bin/<os>/<arch>/kubectl[.exe]
//	         checksum: the same URL + ".sha256" (the hash alone)
//	oc 4.x   https://mirror.openshift.com/pub/openshift-v4/clients/ocp/X.Y.Z/
//	         openshift-client-{linux,linux-arm64,mac,mac-arm64}.tar.gz,
//	         openshift-client-windows.zip
//	         checksum: sha256sum.txt in the same folder ("hash  file")
//	oc 3.x   https://github.com/openshift/origin/releases/download/vX.Y.Z/
//	         openshift-origin-client-tools-vX.Y.Z-<commit>-{linux-64bit.tar.gz,mac.zip,windows.zip}
//	         checksum: the release's CHECKSUM file, which also names the
//	         files (the commit in the names cannot be known beforehand)
//	docker   https://download.docker.com/{linux,mac}/static/stable/{x86_64,aarch64}/docker-X.Y.Z.tgz,
//	         https://download.docker.com/win/static/stable/x86_64/docker-X.Y.Z.zip
//	         (versions before 18.09 end in "-ce")
//	         checksum: none published; a hash from the pinned table (see
//	         pinnedSHA256) when there is one, otherwise devbundle's policy
//	         for unverified downloads: HTTPS only, with a warning.
package clibins

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/internal/dberr"
)

// Client is one client program devbundle can install.
type Client struct {
	// Name is the program's name, also its folder in the cache: "docker",
	// "kubectl" or "oc".
	Name string
	// Service is the service whose server it talks to.
	Service string
	// MirrorEnv is the environment variable naming a mirror base URL.
	MirrorEnv string
}

// Client names.
const (
	nameDocker  = "docker"
	nameKubectl = "kubectl"
	nameOC      = "oc"
)

// ForService returns the client of a service. An unknown service is an
// error of kind dberr.ErrServiceUnavailable (exit 126), as `env` reports it.
func ForService(service string) (Client, error) {
	switch service {
	case config.ServiceDocker:
		return Client{Name: nameDocker, Service: service, MirrorEnv: "DEVBUNDLE_MIRROR_DOCKER"}, nil
	case config.ServiceKubernetes:
		return Client{Name: nameKubectl, Service: service, MirrorEnv: "DEVBUNDLE_MIRROR_KUBECTL"}, nil
	case config.ServiceOpenShift:
		return Client{Name: nameOC, Service: service, MirrorEnv: "DEVBUNDLE_MIRROR_OC"}, nil
	}
	return Client{}, dberr.ServiceUnavailable("unknown service %q; install-cli knows docker, kubernetes and openshift", service)
}

// Official hosts, replaced by a mirror when one is set.
const (
	officialDocker  = "https://download.docker.com"
	officialKubectl = "https://dl.k8s.io"
	officialOC4     = "https://mirror.openshift.com"
	officialOC3     = "https://github.com"
)

// Platform is a target system, in Go's names (GOOS, GOARCH).
type Platform struct {
	OS   string
	Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// exe is the file name suffix of programs on the platform.
func (p Platform) exe() string {
	if p.OS == "windows" {
		return ".exe"
	}
	return ""
}

// Binary is the client's file name on p: "oc" or "oc.exe".
func (c Client) Binary(p Platform) string { return c.Name + p.exe() }

// format is how a download holds the binary.
type format int

const (
	formatBinary format = iota // the binary itself
	formatTarGz                // a gzip'd tar holding it
	formatZip                  // a zip holding it
)

// asset is one download: where, what it is, and how it is checked.
type asset struct {
	url    string
	format format
	// checksum is where the expected digest comes from: a checksum file
	// to fetch (sumURL; sumName picks the line of a list) or a pinned digest.
	sumURL  string
	sumName string
	// pickFromList: the file name is read from the checksum list
	// (oc 3.x); url is then the release's folder.
	pickFromList bool
	pinned       string // sha256 hex
	pinnedBy     string // where the pinned digest came from
}

// version is a release number X.Y.Z with an optional pre-release tag.
type version struct {
	major, minor int
	text         string // "20.10.24", "1.30.0-rc.1": without a leading v
}

// platformError says a client has no build for a platform.
func platformError(c Client, v string, p Platform, offered string) error {
	return dberr.WithHint(dberr.ServiceUnavailable("%s %s is not published for %s (its builds: %s)", c.Name, v, p, offered),
		"run install-cli on one of those systems")
}

// layout works out the download of version v for platform p under base
// (the official host or a mirror, without a trailing slash); pins are
// known docker digests (see pinnedSHA256). oc 3.x needs
// its release's CHECKSUM file first to know the file name: that happens in
// the installer (see resolveOC3).
func layout(c Client, base string, v version, p Platform, pins map[string]pin) (asset, error) {
	switch c.Name {
	case nameKubectl:
		if !oneOf(p.OS, "linux", "darwin", "windows") || !oneOf(p.Arch, "amd64", "arm64") {
			return asset{}, platformError(c, v.text, p, "linux, darwin, windows on amd64, arm64")
		}
		u := fmt.Sprintf("%s/release/v%s/bin/%s/%s/kubectl%s", base, v.text, p.OS, p.Arch, p.exe())
		return asset{url: u, format: formatBinary, sumURL: u + ".sha256"}, nil
	case nameOC:
		if v.major >= 4 {
			name, ok := map[Platform]string{
				{"linux", "amd64"}:   "openshift-client-linux.tar.gz",
				{"linux", "arm64"}:   "openshift-client-linux-arm64.tar.gz",
				{"darwin", "amd64"}:  "openshift-client-mac.tar.gz",
				{"darwin", "arm64"}:  "openshift-client-mac-arm64.tar.gz",
				{"windows", "amd64"}: "openshift-client-windows.zip",
			}[p]
			if !ok {
				return asset{}, platformError(c, v.text, p, "linux/amd64, linux/arm64, darwin/amd64, darwin/arm64, windows/amd64")
			}
			dir := fmt.Sprintf("%s/pub/openshift-v4/clients/ocp/%s/", base, v.text)
			return asset{url: dir + name, format: formatOf(name), sumURL: dir + "sha256sum.txt", sumName: name}, nil
		}
		if v.major == 3 {
			if _, ok := oc3Suffix(p); !ok {
				return asset{}, platformError(c, v.text, p, "linux/amd64, darwin/amd64, windows/amd64")
			}
			dir := fmt.Sprintf("%s/openshift/origin/releases/download/v%s/", base, v.text)
			// The file name is known once CHECKSUM is read.
			return asset{url: dir, sumURL: dir + "CHECKSUM", pickFromList: true}, nil
		}
		return asset{}, dberr.WithHint(dberr.ServiceUnavailable("oc %s: only OpenShift 3.x and 4.x clients are published", v.text),
			"pass --cli-version with a 3.x or 4.x version")
	case nameDocker:
		osDir, ok := map[string]string{"linux": "linux", "darwin": "mac", "windows": "win"}[p.OS]
		archDir, aok := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[p.Arch]
		if !ok || !aok || (p.OS == "windows" && p.Arch != "amd64") {
			return asset{}, platformError(c, v.text, p, "linux and darwin on amd64 and arm64, windows/amd64")
		}
		file := "docker-" + v.text
		if v.major < 18 || (v.major == 18 && v.minor < 9) {
			file += "-ce" // 17.03.0-ce to 18.06.3-ce
		}
		ext := ".tgz"
		if p.OS == "windows" {
			ext = ".zip"
		}
		rel := fmt.Sprintf("%s/static/stable/%s/%s%s", osDir, archDir, file, ext)
		a := asset{url: base + "/" + rel, format: formatOf(ext)}
		if pin, ok := pins[rel]; ok {
			a.pinned, a.pinnedBy = pin.sha256, pin.source
		}
		return a, nil
	}
	return asset{}, fmt.Errorf("unknown client %q", c.Name)
}

// oc3Suffix is the end of an origin 3.x client archive's name for p.
func oc3Suffix(p Platform) (string, bool) {
	s, ok := map[Platform]string{
		{"linux", "amd64"}:   "-linux-64bit.tar.gz",
		{"darwin", "amd64"}:  "-mac.zip",
		{"windows", "amd64"}: "-windows.zip",
	}[p]
	return s, ok
}

func formatOf(name string) format {
	switch {
	case strings.HasSuffix(name, ".zip"):
		return formatZip
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return formatTarGz
	}
	return formatBinary
}

func oneOf(s string, list ...string) bool {
	for _, l := range list {
		if s == l {
			return true
		}
	}
	return false
}

// parseVersion checks a canonical version (see Canonical).
func parseVersion(s string) (version, error) {
	m := canonicalVersion.FindStringSubmatch(s)
	if m == nil {
		return version{}, fmt.Errorf("version %q is not a release number such as 1.28.3", s)
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return version{}, fmt.Errorf("version %q is out of range", s)
	}
	return version{major: major, minor: minor, text: s}, nil
}
