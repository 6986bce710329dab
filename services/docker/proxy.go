package docker

import (
	"net"
	"net/url"

	"github.com/devbundle/devbundle/vm"
)

// hostFromUserMode is the host's loopback as a guest on user-mode
// networking sees it (QEMU's slirp and VirtualBox's NAT both use it).
const hostFromUserMode = "10.0.2.2"

// guestProxy returns the proxy as the guest must name it. A proxy on the
// host's loopback (a local cntlm or px, say) is at 10.0.2.2 from a guest
// on user-mode networking; on a routed network it cannot be reached at
// all, which the returned warning says.
func guestProxy(m *vm.Machine, proxy string) (string, string) {
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
		u.Host = net.JoinHostPort(hostFromUserMode, port)
	} else {
		u.Host = hostFromUserMode
	}
	return u.String(), ""
}
