package services

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/devbundle/devbundle/vm"
)

// HostFromUserMode is the host's loopback as a guest on user-mode
// networking sees it (QEMU's slirp and VirtualBox's NAT both use it).
const HostFromUserMode = "10.0.2.2"

// GuestProxy returns the proxy as the guest must name it. A proxy on the
// host's loopback is at 10.0.2.2 from a guest on user-mode networking; on
// a routed network it cannot be reached at all, which the returned warning
// says.
func GuestProxy(m *vm.Machine, proxy string) (guest, warning string) {
	if proxy == "" {
		return "", ""
	}
	u, err := url.Parse(proxy)
	if err != nil || u.Host == "" {
		return proxy, ""
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return proxy, ""
	}
	if m.Network == vm.NetworkModeLibvirt {
		return proxy, "the proxy " + u.Redacted() + " is on the host's loopback, which the machine cannot reach on its network; use an address of the host the machine can reach"
	}
	if port := u.Port(); port != "" {
		u.Host = net.JoinHostPort(HostFromUserMode, port)
	} else {
		u.Host = HostFromUserMode
	}
	return u.String(), ""
}

// ProxyDropIn renders a systemd drop-in that gives a unit HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY (both spellings), and the file mode it needs:
// 0600 when the proxy URL carries credentials, else 0644.
func ProxyDropIn(proxy string, noProxy []string) ([]byte, os.FileMode, error) {
	env, err := ProxyEnvironment(proxy, noProxy)
	if err != nil {
		return nil, 0, err
	}
	mode := os.FileMode(0o644)
	if u, err := url.Parse(proxy); err == nil && u.User != nil {
		mode = 0o600
	}
	return []byte("# Written by devbundle on every `up`; edits are replaced.\n[Service]\n" + env), mode, nil
}

// ProxyEnvironment renders a unit's Environment= line with HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY in both spellings, each quoted for systemd.
func ProxyEnvironment(proxy string, noProxy []string) (string, error) {
	if strings.ContainsFunc(proxy+strings.Join(noProxy, ","), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("proxy %q has a control character in it", proxy)
	}
	no := strings.Join(noProxy, ",")
	var quoted []string
	for _, v := range []string{
		"HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy, "NO_PROXY=" + no,
		"http_proxy=" + proxy, "https_proxy=" + proxy, "no_proxy=" + no,
	} {
		quoted = append(quoted, systemdQuote(v))
	}
	return "Environment=" + strings.Join(quoted, " ") + "\n", nil
}

// systemdQuote quotes one Environment= assignment: double quotes, with
// backslash and double quote escaped and % doubled (systemd expands %
// specifiers in Environment=).
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	return `"` + r.Replace(s) + `"`
}
