// Package libvirt is devbundle's libvirt provider: QEMU machines defined
// through libvirtd's RPC protocol in pure Go (github.com/digitalocean/go-libvirt,
// no cgo), every XML document built with libvirt.org/go/libvirtxml.
//
// A machine is a domain named "devbundle-<machine>" whose disks are qcow2
// overlay volumes in a "devbundle" directory storage pool, each backed by
// a base volume the box image was uploaded into once (per vm.Disk.Key).
// Networking is QEMU user-mode networking with every forward bound to
// 127.0.0.1 (the default), or an existing libvirt network ("network"
// mode), which devbundle never starts. The serial console is logged to a
// file in the pool folder, where QEMU's user can write it.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Networking modes.
const (
	// NetworkUser is QEMU user-mode networking with forwards bound to
	// 127.0.0.1: nothing on the host's networks changes.
	NetworkUser = "user"
	// NetworkLibvirt attaches the machine to an existing, active libvirt
	// network; the machine gets an address of its own.
	NetworkLibvirt = "network"
)

// TCGCPUMax asks for QEMU's "max" CPU model under TCG (Options.TCGCPU).
const TCGCPUMax = "max"

// Options configure a Provider.
type Options struct {
	// URI names the daemon: "qemu:///system" (the default),
	// "qemu:///session" or "qemu+ssh://user@host/system".
	URI string
	// CacheDir keeps accel.json (the accelerator verdict per libvirt host)
	// and the locks that keep two devbundle processes from uploading the
	// same box image at once. Required.
	CacheDir string
	// Network is the mode new machines get: NetworkUser (default) or
	// NetworkLibvirt.
	Network string
	// NetworkName is the libvirt network of NetworkLibvirt mode
	// (default "default"). It must already be active.
	NetworkName string
	// PoolName is the storage pool for box images and machine disks
	// (default "devbundle"); it is created when missing.
	PoolName string
	// PoolDir is the pool's folder when devbundle has to create it.
	// Default: /var/lib/libvirt/images/devbundle for a system daemon,
	// <XDG data>/devbundle/libvirt-pool for a session one.
	PoolDir string
	// TCGCPU is the CPU emulated under TCG: "" (QEMU's default, qemu64)
	// or "max" (every feature TCG can emulate). qemu64 boots the test box
	// to sshd about 15-20% faster than "max" here, but lacks x86-64-v2
	// (SSE4.2, POPCNT), which RHEL 9 and its rebuilds require: boxes of
	// those need "max".
	TCGCPU string
	// KVMProbeTimeout bounds the boot that decides whether KVM works on a
	// host (default 90 s). See accel.go.
	KVMProbeTimeout time.Duration
	// AlwaysProbeKVM skips the CPU-flag shortcut of the accelerator
	// decision, so a host that offers KVM is always judged by a boot.
	AlwaysProbeKVM bool
	// ConnectTimeout bounds opening the connection (default 30 s).
	ConnectTimeout time.Duration
	// KnownHostsFile is checked for the SSH host key of a qemu+ssh host
	// (default ~/.ssh/known_hosts).
	KnownHostsFile string
	// UploadProgress, when set, is called as a box image is uploaded.
	UploadProgress func(key string, done, total int64)
	// Getenv reads the environment (XDG_RUNTIME_DIR, HOME, USER);
	// default os.Getenv.
	Getenv func(string) string
}

// Provider is the libvirt provider. It holds one connection to the daemon;
// everything about a machine is read back from libvirt or the machine's
// saved state, never kept in memory between commands. When a method's
// context ends while it still waits on the daemon, the connection is cut
// (see watchdog.go) and the Provider must not be used again.
type Provider struct {
	l      *golibvirt.Libvirt
	conn   *connHolder   // to cut the connection when a context ends
	grace  time.Duration // before cutting it; 0 is watchGrace
	t      target
	opts   Options
	libVer uint64
	host   string // the daemon's hostname
}

var (
	_ vm.Provider          = (*Provider)(nil)
	_ vm.ForwardReconciler = (*Provider)(nil)
	_ vm.Addresser         = (*Provider)(nil)
)

// New connects to the libvirt daemon that opts.URI names.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.CacheDir == "" {
		return nil, errors.New("libvirt provider: no cache folder given (Options.CacheDir)")
	}
	switch opts.Network {
	case "":
		opts.Network = NetworkUser
	case NetworkUser, NetworkLibvirt:
	default:
		return nil, fmt.Errorf("network mode %q is not known; use %q or %q", opts.Network, NetworkUser, NetworkLibvirt)
	}
	switch opts.TCGCPU {
	case "", TCGCPUMax:
	default:
		return nil, fmt.Errorf("TCG CPU model %q is not known; use %q or leave it empty for QEMU's default", opts.TCGCPU, TCGCPUMax)
	}
	if opts.NetworkName == "" {
		opts.NetworkName = "default"
	}
	if opts.PoolName == "" {
		opts.PoolName = "devbundle"
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 30 * time.Second
	}
	if opts.KVMProbeTimeout <= 0 {
		opts.KVMProbeTimeout = 90 * time.Second
	}
	t, err := parseTarget(opts.URI, opts.Getenv, runtime.GOOS)
	if err != nil {
		return nil, err
	}
	l, conn, err := connect(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	p := &Provider{l: l, conn: conn, t: t, opts: opts}
	defer p.watch(ctx)()
	if p.libVer, err = l.ConnectGetLibVersion(); err != nil {
		_ = l.Disconnect()
		return nil, fmt.Errorf("libvirt at %q: read its version: %w", t.uri, err)
	}
	if p.host, err = l.ConnectGetHostname(); err != nil {
		_ = l.Disconnect()
		return nil, fmt.Errorf("libvirt at %q: read its hostname: %w", t.uri, err)
	}
	return p, nil
}

// Name is "libvirt".
func (p *Provider) Name() string { return "libvirt" }

// URI is the libvirt URI the provider is connected to.
func (p *Provider) URI() string { return p.t.uri }

// LibVersion is the daemon's libvirt version as major*1e6+minor*1e3+micro.
func (p *Provider) LibVersion() uint64 { return p.libVer }

// Close ends the connection to the daemon. Over qemu+ssh it closes the
// libvirt channel, but the SSH connection beneath it stays open until the
// process exits: go-libvirt's SSH dialer keeps its SSH client to itself.
func (p *Provider) Close() error {
	if p == nil || p.l == nil {
		return nil
	}
	return p.l.Disconnect()
}

// Hop tells whether the daemon runs on another host reached over SSH, and
// how to log in there. Then every forward binds that host's loopback, not
// ours: whoever connects to a machine's ports goes through an SSH
// connection to the hop and dials the forward's HostIP:HostPort from there.
func (p *Provider) Hop() (sshc.Hop, bool) {
	s := p.t.ssh
	if s == nil {
		return sshc.Hop{}, false
	}
	return sshc.Hop{User: s.user, Addr: s.addr(), KeyFile: s.keyFile, KnownHostsFile: knownHostsFile(p.t, p.opts), NoVerify: s.noVerify}, true
}

// domainName is the libvirt domain of a machine.
func domainName(machine string) string { return "devbundle-" + machine }

// machineDomain is the domain name recorded for m, or the one derived
// from its name.
func machineDomain(m *vm.Machine) string {
	if m.ID != "" {
		return m.ID
	}
	return domainName(m.Name)
}
