package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/devbundle/devbundle/vm"
)

// The serial console is logged to a file in the storage pool's folder
// (Created.ConsoleLog): the machine's own folder is 0700 and, with
// qemu:///system, QEMU runs as another user (libvirt-qemu) who could not
// reach it. libvirt 9 opens the file itself and hands QEMU the open
// descriptor; the file ends up 0600 and owned by the daemon's user (root
// for a system daemon; seen on libvirt 9.0), on the daemon's host. So a
// non-root user in the libvirt group, or anyone talking to a remote host,
// cannot read the path directly. ReadConsole therefore reads it through
// libvirt, as a volume of the pool (StorageVolDownload), which works in
// all those cases; Created.ConsoleLog is still reported for root users
// and for messages.

// ReadConsole returns up to the last limit bytes of the machine's serial
// console log; an empty log when there is none yet.
func (p *Provider) ReadConsole(ctx context.Context, m *vm.Machine, limit int64) ([]byte, error) {
	defer p.watch(ctx)()
	pl, err := p.existingPool(ctx)
	if errors.Is(err, errNoPool) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	name := consoleName(m.Name)
	if m.ConsoleLog != "" && path.Dir(m.ConsoleLog) == pl.path {
		name = path.Base(m.ConsoleLog)
	}
	if err := p.l.StoragePoolRefresh(pl.ref, 0); err != nil {
		return nil, fmt.Errorf("refresh storage pool %q: %w", pl.ref.Name, err)
	}
	vol, err := p.l.StorageVolLookupByName(pl.ref, name)
	if isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console log of machine %q: %w", m.Name, err)
	}
	_, _, size, err := p.volInfo(vol)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	var off uint64
	if limit > 0 && size > uint64(limit) {
		off = size - uint64(limit)
	}
	var buf bytes.Buffer
	if err := p.l.StorageVolDownload(vol, &buf, off, size-off, 0); err != nil {
		return nil, fmt.Errorf("read console log of machine %q: %w", m.Name, err)
	}
	return buf.Bytes(), nil
}

// banner tells whether an SSH server answers at addr: a forward that
// reaches a guest sshd sends "SSH-" first. (QEMU's user-mode forward
// accepts the connection even when nothing listens in the guest, then
// closes it.)
func banner(ctx context.Context, addr string) bool {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 4)
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil {
			break
		}
	}
	return string(buf[:n]) == "SSH-"
}
