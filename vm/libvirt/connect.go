package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// DefaultURI is the daemon devbundle talks to when Options.URI is empty:
// the system instance, as vagrant-libvirt does.
const DefaultURI = "qemu:///system"

// target is a parsed libvirt URI: where to dial and what to ask for.
type target struct {
	uri     string // as given (normalised)
	name    string // the URI the daemon is asked to open: qemu:///system
	session bool
	// sockets are the unix sockets to try in order: local ones, or, for
	// SSH, sockets on the remote host.
	sockets []string
	ssh     *sshTarget // nil for a local daemon
}

// sshTarget is the SSH part of a qemu+ssh:// URI.
type sshTarget struct {
	user    string
	host    string // without port
	port    string
	keyFile string
	// knownHosts is the ?known_hosts= file; empty means the default.
	knownHosts string
	noVerify   bool
}

// addr is host:port of the SSH server.
func (s *sshTarget) addr() string { return net.JoinHostPort(s.host, s.port) }

// parseTarget understands qemu:///system, qemu:///session and
// qemu+ssh://[user@]host[:port]/system (also qemu+unix:///... and the
// ?socket=, ?keyfile= and ?no_verify= parameters libvirt's own clients
// take). getenv supplies XDG_RUNTIME_DIR, HOME and USER; goos picks the
// socket folders of the platform.
func parseTarget(raw string, getenv func(string) string, goos string) (target, error) {
	if raw == "" {
		raw = DefaultURI
	}
	hint := `use "qemu:///system", "qemu:///session" or "qemu+ssh://user@host/system"`
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("libvirt URI %q cannot be parsed (%w); %s", raw, err, hint)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver != "qemu" {
		return target{}, fmt.Errorf("libvirt URI %q is not a QEMU URI; %s", raw, hint)
	}
	var t target
	t.uri = raw
	switch strings.TrimSuffix(u.Path, "/") {
	case "/system":
		t.name = "qemu:///system"
	case "/session":
		t.name = "qemu:///session"
		t.session = true
	default:
		return target{}, fmt.Errorf("libvirt URI %q names neither /system nor /session; %s", raw, hint)
	}
	q := u.Query()
	socket := q.Get("socket")
	if transport == "" && u.Host != "" {
		transport = "tls"
	}
	switch transport {
	case "", "unix":
		if u.Host != "" {
			return target{}, fmt.Errorf("libvirt URI %q names a host but no transport; %s", raw, hint)
		}
		if socket != "" {
			t.sockets = []string{socket}
		} else {
			t.sockets = localSockets(t.session, getenv, goos)
		}
	case "ssh":
		if u.Hostname() == "" {
			return target{}, fmt.Errorf("libvirt URI %q has no host; %s", raw, hint)
		}
		s := &sshTarget{
			user:       u.User.Username(),
			host:       u.Hostname(),
			port:       u.Port(),
			keyFile:    q.Get("keyfile"),
			knownHosts: q.Get("known_hosts"),
		}
		if s.port == "" {
			s.port = "22"
		}
		if s.user == "" {
			s.user = getenv("USER")
		}
		if nv := q.Get("no_verify"); nv != "" && nv != "0" {
			s.noVerify = true
		}
		t.ssh = s
		switch {
		case socket != "":
			t.sockets = []string{socket}
		case t.session:
			return target{}, fmt.Errorf("libvirt URI %q: a remote session daemon's socket cannot be guessed; add ?socket=/run/user/<uid>/libvirt/libvirt-sock", raw)
		default:
			t.sockets = []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"}
		}
	default:
		return target{}, fmt.Errorf("libvirt URI %q uses transport %q, which devbundle does not support; %s", raw, transport, hint)
	}
	return t, nil
}

// localSockets lists where a local daemon listens: the monolithic
// libvirtd's socket first, then the modular virtqemud's.
func localSockets(session bool, getenv func(string) string, goos string) []string {
	names := []string{"libvirt-sock", "virtqemud-sock"}
	var dirs []string
	if session {
		if rt := getenv("XDG_RUNTIME_DIR"); rt != "" {
			dirs = append(dirs, filepath.Join(rt, "libvirt"))
		} else if home := getenv("HOME"); home != "" {
			// libvirt's fallback when there is no runtime folder.
			dirs = append(dirs, filepath.Join(home, ".cache", "libvirt"))
		}
	} else {
		dirs = append(dirs, "/var/run/libvirt")
		if goos == "darwin" {
			// Homebrew's prefixes (Apple silicon, then Intel).
			dirs = append(dirs, "/opt/homebrew/var/run/libvirt", "/usr/local/var/run/libvirt")
		}
	}
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

// ctxDialer dials a unix socket under a context, for go-libvirt.
type ctxDialer struct {
	ctx  context.Context
	path string
}

func (d ctxDialer) Dial() (net.Conn, error) {
	var nd net.Dialer
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
	defer cancel()
	return nd.DialContext(ctx, "unix", d.path)
}

// connect opens the connection the target names, trying each socket in
// turn. The error for a daemon that does not answer says what to install
// or start and which sockets were tried.
func connect(ctx context.Context, t target, opts Options) (*golibvirt.Libvirt, *connHolder, error) {
	var errs []error
	for _, sock := range t.sockets {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var dialer socket.Dialer = ctxDialer{ctx: ctx, path: sock}
		if t.ssh != nil {
			dialer = dialers.NewSSH(t.ssh.host, sshOptions(t, sock, opts)...)
		}
		h := &connHolder{}
		l := golibvirt.NewWithDialer(recordingDialer{inner: dialer, h: h})
		err := openWithin(ctx, l, h, t.name, opts.ConnectTimeout)
		if err == nil {
			return l, h, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", sock, err))
		if t.ssh != nil && !remoteSocketMissing(err) {
			// SSH itself failed (host, auth, host key): trying another
			// socket over the same SSH server cannot help.
			break
		}
	}
	return nil, nil, connectError(t, errs)
}

// openWithin opens the connection, giving up when the daemon has not
// answered within timeout or ctx ends (a daemon that accepts connections
// but hangs must not hang devbundle).
func openWithin(ctx context.Context, l *golibvirt.Libvirt, h *connHolder, name string, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- l.ConnectToURI(golibvirt.ConnectURI(name)) }()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case err := <-errc:
		return err
	case <-tctx.Done():
		h.close()
		select {
		case err := <-errc:
			if err == nil { // answered just as the time ran out
				_ = l.Disconnect()
			}
		case <-time.After(5 * time.Second):
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("the daemon accepted the connection but did not answer within %s", timeout)
	}
}

// remoteSocketMissing tells a missing socket on the SSH server from an
// SSH failure.
func remoteSocketMissing(err error) bool {
	return strings.Contains(err.Error(), "failed to connect to remote libvirt socket")
}

// knownHostsFile is the file holding the SSH host's key: the URI's
// ?known_hosts=, else Options.KnownHostsFile; "" means ~/.ssh/known_hosts.
func knownHostsFile(t target, opts Options) string {
	if t.ssh != nil && t.ssh.knownHosts != "" {
		return t.ssh.knownHosts
	}
	return opts.KnownHostsFile
}

func sshOptions(t target, sock string, opts Options) []dialers.SSHOption {
	s := t.ssh
	o := []dialers.SSHOption{
		dialers.UseSSHUsername(s.user),
		dialers.UseSSHPort(s.port),
		dialers.WithRemoteSocket(sock),
	}
	known := knownHostsFile(t, opts)
	if known == "" {
		if home, err := os.UserHomeDir(); err == nil {
			known = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	if known != "" {
		o = append(o, dialers.UseKnownHostsFile(known))
	}
	if s.keyFile != "" {
		o = append(o, dialers.UseKeyFile(s.keyFile))
	}
	if s.noVerify {
		o = append(o, dialers.WithInsecureIgnoreHostKey())
	}
	return o
}

// connectError turns the failures of every socket into one line saying
// what to do.
func connectError(t target, errs []error) error {
	denied := false
	for _, e := range errs {
		if errors.Is(e, fs.ErrPermission) || errors.Is(e, syscall.EACCES) {
			denied = true
		}
	}
	tried := strings.Join(t.sockets, ", ")
	last := errors.New("no socket to try")
	if len(errs) > 0 {
		last = errs[len(errs)-1]
	}
	if t.ssh != nil {
		return fmt.Errorf("cannot reach libvirt at %q through SSH to %s (sockets tried: %s): %w; check that \"ssh %s@%s\" works with a key (agent or ~/.ssh/id_*), that the host is in ~/.ssh/known_hosts, and that libvirtd runs there",
			t.uri, t.ssh.addr(), tried, last, t.ssh.user, t.ssh.host)
	}
	if denied {
		return fmt.Errorf("libvirt at %q refused access (sockets tried: %s): %w; add your user to the libvirt group (\"sudo usermod -aG libvirt $USER\", then log in again) or use \"qemu:///session\"",
			t.uri, tried, last)
	}
	return fmt.Errorf("no libvirt daemon answers at %q (sockets tried: %s): %w; %s",
		t.uri, tried, last, installHint(t.session))
}
