package libvirt

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A daemon that accepts the connection and never answers must not hang
// New: it gives up after ConnectTimeout and says so.
func TestNewSilentDaemon(t *testing.T) {
	rt := t.TempDir()
	sock := filepath.Join(rt, "libvirt", "libvirt-sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		var held []net.Conn // read nothing, answer nothing
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	defer func() { l.Close(); <-accepting }()
	start := time.Now()
	_, err = New(context.Background(), Options{
		URI: "qemu:///session?socket=" + sock, CacheDir: t.TempDir(), ConnectTimeout: 500 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "did not answer within 500ms") {
		t.Fatalf("New against a silent daemon: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("New took %s to give up", d)
	}
}

// watch cuts the connection when the context ends before the call
// returns, and leaves it alone when the call returns first.
func TestWatch(t *testing.T) {
	newConn := func() (*connHolder, net.Conn) {
		a, b := net.Pipe()
		h := &connHolder{}
		h.set(a)
		return h, b
	}
	closed := func(peer net.Conn) bool {
		_ = peer.SetReadDeadline(time.Now().Add(time.Second))
		_, err := peer.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	h, peer := newConn()
	p := &Provider{conn: h, grace: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	stop := p.watch(ctx)
	cancel()
	time.Sleep(100 * time.Millisecond)
	stop()
	if !closed(peer) {
		t.Fatal("the connection survived a context that ended during the call")
	}

	h, peer = newConn()
	p = &Provider{conn: h, grace: 10 * time.Millisecond}
	ctx, cancel = context.WithCancel(context.Background())
	p.watch(ctx)()
	cancel()
	time.Sleep(100 * time.Millisecond)
	if closed(peer) {
		t.Fatal("the connection was cut after the call had returned")
	}
}
