package libvirt

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt/socket"
)

// go-libvirt's calls take no context. To honour one anyway, the provider
// keeps hold of the connection it dialled and closes it when a context
// ends while a call is still waiting on the daemon: the pending call then
// returns (go-libvirt reports ErrInterrupted) instead of blocking for
// ever on a stuck daemon. After that the Provider cannot be used again;
// commands whose context has ended are on their way out anyway.

// watchGrace lets a call that is already ending on its own (an upload
// aborting its stream, a cleanup) finish after its context ended, before
// the connection is cut.
const watchGrace = 5 * time.Second

// connHolder keeps the connection go-libvirt dialled.
type connHolder struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (h *connHolder) set(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = c
	if h.closed {
		_ = c.Close()
	}
}

// close cuts the connection, now or as soon as it is dialled.
func (h *connHolder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.conn != nil {
		_ = h.conn.Close()
	}
}

// recordingDialer hands go-libvirt the connections of inner and keeps
// them in h.
type recordingDialer struct {
	inner socket.Dialer
	h     *connHolder
}

func (d recordingDialer) Dial() (net.Conn, error) {
	c, err := d.inner.Dial()
	if err == nil {
		d.h.set(c)
	}
	return c, err
}

// watch cuts the connection if ctx ends (plus watchGrace) before the
// returned stop is called. Every exported method that talks to the daemon
// runs under it: defer p.watch(ctx)().
func (p *Provider) watch(ctx context.Context) (stop func()) {
	if p.conn == nil {
		return func() {}
	}
	var mu sync.Mutex
	var timer *time.Timer
	stopped := false
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			grace := p.grace
			if grace == 0 {
				grace = watchGrace
			}
			timer = time.AfterFunc(grace, p.conn.close)
		}
	})
	return func() {
		stopAfter()
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
	}
}
