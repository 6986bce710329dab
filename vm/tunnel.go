package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// TunnelOptions say which machine's forwards to carry.
type TunnelOptions struct {
	Name string
	// Ready is called once every listener is open, with the forwards
	// carried.
	Ready func(hop string, forwards []Forward)
	// Log receives one line per connection that fails.
	Log func(format string, args ...any)
}

// Tunnel makes the forwards of a machine on a remote libvirt host usable
// on this one: it listens on this host's 127.0.0.1 at each forward's host
// port and carries every connection through one SSH connection to the
// remote host, to the same port on its loopback (where QEMU binds the
// forwards). `env` output therefore works unchanged while it runs. It
// returns when ctx ends (nil) or the SSH connection drops.
func (mgr *Manager) Tunnel(ctx context.Context, opts TunnelOptions) error {
	m, err := mgr.Store.LoadReachable(opts.Name)
	if err != nil {
		return err
	}
	if m.Via == nil {
		return fmt.Errorf("machine %q runs on this host: its forwards are on 127.0.0.1 already and need no tunnel", m.Name)
	}
	dial, release, err := mgr.HostDialer(ctx, m)
	if err != nil {
		return err
	}
	defer release()
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}

	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	var lc net.ListenConfig
	for _, f := range m.Forwards {
		if f.HostPort == 0 {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.HostPort))
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s for the %q forward: %w; stop what uses that port, or the other tunnel", addr, f.Name, err)
		}
		listeners = append(listeners, l)
	}
	if len(listeners) == 0 {
		return fmt.Errorf("machine %q has no forwarded ports to carry", m.Name)
	}
	if opts.Ready != nil {
		opts.Ready(m.Via.Addr, m.Forwards)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- serveTunnel(ctx, l, dial, logf, &wg)
		}()
	}
	select {
	case <-ctx.Done():
		for _, l := range listeners {
			_ = l.Close()
		}
		return nil
	case err := <-errc:
		cancel()
		for _, l := range listeners {
			_ = l.Close()
		}
		if ctx.Err() != nil && err == nil {
			return nil
		}
		return err
	}
}

// serveTunnel accepts on l and carries each connection to the same
// address through dial.
func serveTunnel(ctx context.Context, l net.Listener, dial func(context.Context, string, string) (net.Conn, error),
	logf func(string, ...any), wg *sync.WaitGroup) error {
	target := l.Addr().String()
	for {
		local, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer local.Close()
			remote, err := dial(ctx, "tcp", target)
			if err != nil {
				logf("tunnel to %s: %v", target, err)
				return
			}
			defer remote.Close()
			stop := context.AfterFunc(ctx, func() { _ = local.Close(); _ = remote.Close() })
			defer stop()
			pipe(local, remote)
		}()
	}
}

// pipe copies both ways until either side ends.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}
