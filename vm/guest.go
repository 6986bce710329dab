package vm

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/devbundle/devbundle/vm/sshc"
)

// Runner runs a command in the guest and returns its standard output.
type Runner interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// OSRelease is the guest's /etc/os-release, parsed.
type OSRelease map[string]string

// ReadOSRelease reads and parses /etc/os-release in the guest.
func ReadOSRelease(ctx context.Context, r Runner) (OSRelease, error) {
	out, err := r.Output(ctx, "cat /etc/os-release")
	if err != nil {
		return nil, fmt.Errorf("read /etc/os-release: %w", err)
	}
	return ParseOSRelease(string(out)), nil
}

// ParseOSRelease parses os-release text: KEY=value lines, values maybe
// quoted with single or double quotes.
func ParseOSRelease(text string) OSRelease {
	out := OSRelease{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if v[0] == '"' {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = v[1 : len(v)-1]
				}
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	return out
}

// nicAddressScript prints "iface=<name>" and "addr=<IPv4>" for the
// guest's network interface whose MAC is $1. An interface with no IPv4
// address gets one DHCP attempt of at most $2 seconds with whichever
// client the guest has (dhclient, udhcpc, networkctl), as root through
// sudo -n when not root. It prints nothing for a MAC no interface has.
const nicAddressScript = `mac=$(printf '%s' "$1" | tr 'A-F' 'a-f')
wait=$2
run() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
limit() { if command -v timeout >/dev/null 2>&1; then run timeout "$wait" "$@"; else run "$@"; fi; }
for dev in /sys/class/net/*; do
	[ "$(cat "$dev/address" 2>/dev/null)" = "$mac" ] || continue
	iface=${dev##*/}
	echo "iface=$iface"
	addr() { ip -4 -o addr show dev "$iface" 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }'; }
	a=$(addr)
	if [ -z "$a" ]; then
		run ip link set "$iface" up 2>/dev/null
		if command -v dhclient >/dev/null 2>&1; then limit dhclient -1 -4 "$iface" >/dev/null 2>&1
		elif command -v udhcpc >/dev/null 2>&1; then limit udhcpc -n -q -i "$iface" >/dev/null 2>&1
		elif command -v networkctl >/dev/null 2>&1; then run networkctl reconfigure "$iface" >/dev/null 2>&1 && sleep "$wait"
		fi
		a=$(addr)
	fi
	echo "addr=$a"
	exit 0
done`

// NICAddress finds the guest's interface with the given MAC and its IPv4
// address, trying DHCP once when it has none. iface is "" when no
// interface has that MAC; addr is "" when it has no address.
// dhcpWait bounds the DHCP attempt in seconds (default 20).
func NICAddress(ctx context.Context, r Runner, mac string, dhcpWait int) (iface, addr string, err error) {
	if _, perr := net.ParseMAC(mac); perr != nil {
		return "", "", fmt.Errorf("MAC %q: %w", mac, perr)
	}
	if dhcpWait <= 0 {
		dhcpWait = 20
	}
	out, err := r.Output(ctx, "sh -c "+sshc.Quote(nicAddressScript)+" devbundle-nic "+sshc.Quote(mac)+" "+strconv.Itoa(dhcpWait))
	if err != nil {
		return "", "", fmt.Errorf("find the guest's interface %s: %w", mac, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "iface":
			iface = v
		case "addr":
			if ip := net.ParseIP(v); ip != nil && ip.To4() != nil {
				addr = v
			}
		}
	}
	return iface, addr, nil
}
