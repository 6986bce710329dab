package libvirt

// Disks.
//
// Box images live in a directory storage pool ("devbundle" unless
// Options.PoolName says otherwise), created, built, started and set to
// autostart when missing. Each image is uploaded once per vm.Disk.Key into
// a base volume named after a hash of the key; every machine disk is a
// qcow2 overlay volume the daemon creates with the base as backing store
// (no qemu-img on the client, no copy of the base).
//
// A base volume is complete only when its marker volume
// ("<base>.complete", empty) exists. libvirt has no rename and no place in
// a volume for a flag, so completion is recorded beside it: the marker is
// created only after StorageVolUpload has returned success and the
// volume's physical size matches the image file, and removed first when a
// base is deleted. A base found without its marker is a broken upload (a
// killed process, a lost connection) and is deleted and uploaded again;
// no overlay can back onto it, because overlays are only made from marked
// bases. Two devbundle processes on one client serialise on a lock file
// per base in Options.CacheDir; clients on different hosts sharing one
// daemon are not protected from each other.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/internal/filelock"
	"github.com/devbundle/devbundle/vm"
)

const (
	basePrefix     = "devbundle-base-"
	completeSuffix = ".complete"
)

// pool is the storage pool in use.
type pool struct {
	ref  golibvirt.StoragePool
	path string // its folder on the daemon's host
}

// baseImage is an uploaded box image.
type baseImage struct {
	name        string
	path        string
	format      string
	virtualSize uint64
}

// baseVolumeName is the base volume of a disk key.
func baseVolumeName(key string) string {
	h := sha256.Sum256([]byte(key))
	return basePrefix + hex.EncodeToString(h[:12]) + ".img"
}

// overlayName is the volume of a machine's i-th disk.
func overlayName(machine string, i int) string {
	return fmt.Sprintf("devbundle-%s-vd%c.qcow2", machine, 'a'+i)
}

// consoleName is the volume (file) the machine's serial console is
// logged to.
func consoleName(machine string) string { return "devbundle-" + machine + "-console.log" }

// ownedBy tells whether volume name is one of machine's own volumes.
func ownedBy(name, machine string) bool {
	re := regexp.MustCompile(`^devbundle-` + regexp.QuoteMeta(machine) + `-(vd[a-z]\.qcow2|console\.log)$`)
	return re.MatchString(name)
}

// poolDir is where a new pool goes.
func (p *Provider) poolDir() (string, error) {
	if p.opts.PoolDir != "" {
		return p.opts.PoolDir, nil
	}
	if !p.t.session {
		return "/var/lib/libvirt/images/devbundle", nil
	}
	if p.t.ssh != nil {
		return "", fmt.Errorf("libvirt at %q: a pool folder on a remote session daemon cannot be guessed; set the pool folder in the configuration", p.t.uri)
	}
	data := p.opts.Getenv("XDG_DATA_HOME")
	if data == "" {
		home := p.opts.Getenv("HOME")
		if home == "" {
			return "", errors.New("cannot find a folder for the libvirt pool: neither XDG_DATA_HOME nor HOME is set")
		}
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "devbundle", "libvirt-pool"), nil
}

// errNoPool is returned by existingPool when the pool was never made.
var errNoPool = errors.New("storage pool does not exist")

// ensurePool finds the pool, defining, building and starting it when it
// is missing or stopped.
func (p *Provider) ensurePool(ctx context.Context) (pool, error) {
	return p.openPool(ctx, true)
}

// existingPool finds the pool and starts it when stopped, but does not
// create it: errNoPool when it does not exist.
func (p *Provider) existingPool(ctx context.Context) (pool, error) {
	return p.openPool(ctx, false)
}

func (p *Provider) openPool(ctx context.Context, create bool) (pool, error) {
	name := p.opts.PoolName
	ref, err := p.l.StoragePoolLookupByName(name)
	switch {
	case isLibvirtErr(err, golibvirt.ErrNoStoragePool) && !create:
		return pool{}, fmt.Errorf("storage pool %q: %w", name, errNoPool)
	case isLibvirtErr(err, golibvirt.ErrNoStoragePool):
		if ref, err = p.definePool(ctx, name); err != nil {
			return pool{}, err
		}
	case err != nil:
		return pool{}, fmt.Errorf("look up storage pool %q: %w", name, err)
	}
	active, err := p.l.StoragePoolIsActive(ref)
	if err != nil {
		return pool{}, fmt.Errorf("storage pool %q: %w", name, err)
	}
	if active != 1 {
		if err := p.l.StoragePoolCreate(ref, 0); err != nil && !isLibvirtErr(err, golibvirt.ErrOperationInvalid) {
			return pool{}, fmt.Errorf("start storage pool %q: %w", name, err)
		}
	}
	doc, err := p.l.StoragePoolGetXMLDesc(ref, 0)
	if err != nil {
		return pool{}, fmt.Errorf("storage pool %q: %w", name, err)
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(doc); err != nil {
		return pool{}, fmt.Errorf("storage pool %q: %w", name, err)
	}
	if px.Type != "dir" || px.Target == nil || px.Target.Path == "" {
		return pool{}, fmt.Errorf("storage pool %q is of type %q; devbundle needs a directory pool: remove it or choose another pool name", name, px.Type)
	}
	return pool{ref: ref, path: px.Target.Path}, nil
}

func (p *Provider) definePool(ctx context.Context, name string) (golibvirt.StoragePool, error) {
	dir, err := p.poolDir()
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	unlock, err := p.lock(ctx, "pool-"+name)
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	defer unlock()
	if ref, err := p.l.StoragePoolLookupByName(name); err == nil {
		return ref, nil // another process was first
	}
	doc, err := poolXML(name, dir)
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	ref, err := p.l.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("define storage pool %q at %q: %w", name, dir, err)
	}
	if err := p.l.StoragePoolBuild(ref, golibvirt.StoragePoolBuildNew); err != nil {
		_ = p.l.StoragePoolUndefine(ref)
		return golibvirt.StoragePool{}, fmt.Errorf("build storage pool %q at %q: %w", name, dir, err)
	}
	if err := p.l.StoragePoolCreate(ref, 0); err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("start storage pool %q: %w", name, err)
	}
	if err := p.l.StoragePoolSetAutostart(ref, 1); err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("set storage pool %q to start with libvirt: %w", name, err)
	}
	return ref, nil
}

// poolXML defines a directory pool. 0711 lets QEMU's user (libvirt-qemu
// for a system daemon) reach the files without listing the folder.
func poolXML(name, dir string) (string, error) {
	px := libvirtxml.StoragePool{
		Type: "dir",
		Name: name,
		Target: &libvirtxml.StoragePoolTarget{
			Path:        dir,
			Permissions: &libvirtxml.StoragePoolTargetPermissions{Mode: "0711"},
		},
	}
	return px.Marshal()
}

// lock takes a client-side lock named name in the cache folder.
func (p *Provider) lock(ctx context.Context, name string) (func(), error) {
	dir := filepath.Join(p.opts.CacheDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock folder: %w", err)
	}
	u, err := filelock.Lock(ctx, filepath.Join(dir, name+".lock"))
	if err != nil {
		return nil, err
	}
	return func() { _ = u() }, nil
}

// imageInfo reads what the daemon needs to know about a box image file:
// its format, checked against the box's word for it, and virtual size.
func imageInfo(file, format string) (size, virtualSize uint64, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("box disk: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("box disk: %w", err)
	}
	size = uint64(st.Size())
	var hdr [32]byte
	n, _ := io.ReadFull(f, hdr[:])
	isQcow2 := n == len(hdr) && string(hdr[:4]) == "QFI\xfb"
	switch format {
	case "qcow2":
		if !isQcow2 {
			return 0, 0, fmt.Errorf("box disk %q is said to be qcow2 but is not (no qcow2 header); the box is damaged: remove it and add it again", file)
		}
		if binary.BigEndian.Uint64(hdr[8:16]) != 0 {
			return 0, 0, fmt.Errorf("box disk %q has a backing file of its own; devbundle needs a self-contained image", file)
		}
		return size, binary.BigEndian.Uint64(hdr[24:32]), nil
	case "raw":
		if isQcow2 {
			return 0, 0, fmt.Errorf("box disk %q is said to be raw but is qcow2; the box's metadata is wrong", file)
		}
		return size, size, nil
	default:
		return 0, 0, fmt.Errorf("box disk %q is in format %q; the libvirt provider takes qcow2 or raw images (a libvirt box)", file, format)
	}
}

// ensureBase makes sure the box image of disk is in the pool, uploading
// it when it is not (or only partly) there. It returns holding the base's
// lock, so that RemoveBaseImage cannot delete the base before the caller
// has backed an overlay onto it; the caller calls unlock.
func (p *Provider) ensureBase(ctx context.Context, pl pool, disk vm.Disk) (b baseImage, unlock func(), err error) {
	unlock, err = p.lock(ctx, baseVolumeName(disk.Key))
	if err != nil {
		return baseImage{}, nil, err
	}
	b, err = p.ensureBaseLocked(ctx, pl, disk)
	if err != nil {
		unlock()
		return baseImage{}, nil, err
	}
	return b, unlock, nil
}

func (p *Provider) ensureBaseLocked(ctx context.Context, pl pool, disk vm.Disk) (baseImage, error) {
	format := disk.Format
	if format == "" {
		format = "qcow2"
	}
	size, vsize, err := imageInfo(disk.Path, format)
	if err != nil {
		return baseImage{}, err
	}
	if disk.Key == "" {
		return baseImage{}, fmt.Errorf("box disk %q has no key to share it by", disk.Path)
	}
	name := baseVolumeName(disk.Key)
	b := baseImage{name: name, path: path.Join(pl.path, name), format: format, virtualSize: vsize}
	if err := p.l.StoragePoolRefresh(pl.ref, 0); err != nil {
		return baseImage{}, fmt.Errorf("refresh storage pool %q: %w", pl.ref.Name, err)
	}
	vol, err := p.l.StorageVolLookupByName(pl.ref, name)
	haveBase := err == nil
	if err != nil && !isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		return baseImage{}, fmt.Errorf("look up volume %q: %w", name, err)
	}
	_, err = p.l.StorageVolLookupByName(pl.ref, name+completeSuffix)
	complete := err == nil
	if err != nil && !isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		return baseImage{}, fmt.Errorf("look up volume %q: %w", name+completeSuffix, err)
	}
	if haveBase && complete {
		if b.path, err = p.l.StorageVolGetPath(vol); err != nil {
			return baseImage{}, fmt.Errorf("volume %q: %w", name, err)
		}
		return b, nil
	}
	if complete {
		// A marker without its base: drop it, upload again.
		if err := p.deleteVolume(pl, name+completeSuffix); err != nil {
			return baseImage{}, err
		}
	}
	if haveBase {
		if err := p.l.StorageVolDelete(vol, 0); err != nil {
			return baseImage{}, fmt.Errorf("delete the incomplete upload %q: %w", name, err)
		}
	}
	if b.path, err = p.upload(ctx, pl, disk, b, size); err != nil {
		return baseImage{}, err
	}
	marker, err := (&libvirtxml.StorageVolume{
		Name:     name + completeSuffix,
		Capacity: &libvirtxml.StorageVolumeSize{Value: 0},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}).Marshal()
	if err != nil {
		return baseImage{}, err
	}
	if _, err := p.l.StorageVolCreateXML(pl.ref, marker, 0); err != nil {
		return baseImage{}, fmt.Errorf("mark volume %q complete: %w", name, err)
	}
	return b, nil
}

// upload creates the base volume and streams the image file into it.
// On any failure the volume is deleted again.
func (p *Provider) upload(ctx context.Context, pl pool, disk vm.Disk, b baseImage, size uint64) (string, error) {
	doc, err := (&libvirtxml.StorageVolume{
		Name:       b.name,
		Capacity:   &libvirtxml.StorageVolumeSize{Value: b.virtualSize},
		Allocation: &libvirtxml.StorageVolumeSize{Value: 0},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: b.format}},
	}).Marshal()
	if err != nil {
		return "", err
	}
	vol, err := p.l.StorageVolCreateXML(pl.ref, doc, 0)
	if err != nil {
		return "", fmt.Errorf("create volume %q for box disk %q: %w", b.name, disk.Key, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = p.l.StorageVolDelete(vol, 0)
		}
	}()
	f, err := os.Open(disk.Path)
	if err != nil {
		return "", fmt.Errorf("box disk: %w", err)
	}
	defer f.Close()
	r := &uploadReader{ctx: ctx, r: f, total: int64(size), key: disk.Key, progress: p.opts.UploadProgress}
	if r.progress != nil {
		r.progress(disk.Key, 0, r.total)
	}
	if err := p.l.StorageVolUpload(vol, r, 0, size, 0); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("upload box disk %q: %w", disk.Key, ctx.Err())
		}
		return "", fmt.Errorf("upload box disk %q into volume %q: %w", disk.Key, b.name, err)
	}
	if r.done != int64(size) {
		return "", fmt.Errorf("upload box disk %q: sent %d of %d bytes", disk.Key, r.done, size)
	}
	_, _, phys, err := p.volInfo(vol)
	if err != nil {
		return "", err
	}
	if phys != size {
		return "", fmt.Errorf("upload box disk %q: volume %q holds %d bytes, the image %d", disk.Key, b.name, phys, size)
	}
	volPath, err := p.l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", b.name, err)
	}
	ok = true
	return volPath, nil
}

// volInfo reads a volume's capacity, allocation and physical size.
func (p *Provider) volInfo(vol golibvirt.StorageVol) (capacity, allocation, physical uint64, err error) {
	_, capacity, allocation, err = p.l.StorageVolGetInfo(vol)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("volume %q: %w", vol.Name, err)
	}
	_, _, physical, err = p.l.StorageVolGetInfoFlags(vol, uint32(golibvirt.StorageVolGetPhysical))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("volume %q: %w", vol.Name, err)
	}
	return capacity, allocation, physical, nil
}

// uploadReader feeds the upload stream, stops it when ctx ends and
// reports progress.
type uploadReader struct {
	ctx      context.Context
	r        io.Reader
	done     int64
	total    int64
	key      string
	progress func(key string, done, total int64)
}

func (u *uploadReader) Read(b []byte) (int, error) {
	if err := u.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := u.r.Read(b)
	u.done += int64(n)
	if u.progress != nil && n > 0 {
		u.progress(u.key, u.done, u.total)
	}
	return n, err
}

// createOverlay makes the qcow2 volume of a machine disk on top of base,
// replacing a leftover of the same name (from a create that failed).
func (p *Provider) createOverlay(pl pool, name string, b baseImage, capacity uint64) (string, error) {
	if err := p.deleteVolume(pl, name); err != nil {
		return "", err
	}
	doc, err := overlayXML(name, b, capacity)
	if err != nil {
		return "", err
	}
	vol, err := p.l.StorageVolCreateXML(pl.ref, doc, 0)
	if err != nil {
		return "", fmt.Errorf("create disk volume %q: %w", name, err)
	}
	volPath, err := p.l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", name, err)
	}
	return volPath, nil
}

// overlayXML is a qcow2 volume backed by base, at least as big as it.
func overlayXML(name string, b baseImage, capacity uint64) (string, error) {
	capacity = max(capacity, b.virtualSize)
	v := libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: capacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{
			Path:   b.path,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: b.format},
		},
	}
	return v.Marshal()
}

// deleteVolume deletes the named volume; one that does not exist is fine.
func (p *Provider) deleteVolume(pl pool, name string) error {
	vol, err := p.l.StorageVolLookupByName(pl.ref, name)
	if isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up volume %q: %w", name, err)
	}
	if err := p.l.StorageVolDelete(vol, 0); err != nil && !isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
		return fmt.Errorf("delete volume %q: %w", name, err)
	}
	return nil
}

// volumes lists the pool's volumes with their definitions.
func (p *Provider) volumes(pl pool) ([]libvirtxml.StorageVolume, error) {
	if err := p.l.StoragePoolRefresh(pl.ref, 0); err != nil {
		return nil, fmt.Errorf("refresh storage pool %q: %w", pl.ref.Name, err)
	}
	vols, _, err := p.l.StoragePoolListAllVolumes(pl.ref, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list volumes of pool %q: %w", pl.ref.Name, err)
	}
	var out []libvirtxml.StorageVolume
	for _, v := range vols {
		doc, err := p.l.StorageVolGetXMLDesc(v, 0)
		if isLibvirtErr(err, golibvirt.ErrNoStorageVol) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		var vx libvirtxml.StorageVolume
		if err := vx.Unmarshal(doc); err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out = append(out, vx)
	}
	return out, nil
}

// RemoveBaseImage deletes the uploaded copy of the box disk key. It
// refuses while any volume still backs onto it; a copy never uploaded is
// not an error.
func (p *Provider) RemoveBaseImage(ctx context.Context, key string) error {
	defer p.watch(ctx)()
	pl, err := p.existingPool(ctx)
	if errors.Is(err, errNoPool) {
		return nil
	}
	if err != nil {
		return err
	}
	name := baseVolumeName(key)
	unlock, err := p.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	vols, err := p.volumes(pl)
	if err != nil {
		return err
	}
	basePath := ""
	for _, v := range vols {
		if v.Name == name && v.Target != nil {
			basePath = v.Target.Path
		}
	}
	if basePath != "" {
		var users []string
		for _, v := range vols {
			if v.BackingStore != nil && v.BackingStore.Path == basePath {
				users = append(users, v.Name)
			}
		}
		if len(users) > 0 {
			return fmt.Errorf("the uploaded copy of box disk %q is still used by volume(s) %s; destroy the machines made from it first", key, strings.Join(users, ", "))
		}
	}
	// The marker goes first: a base left without it is redone, never used.
	if err := p.deleteVolume(pl, name+completeSuffix); err != nil {
		return err
	}
	return p.deleteVolume(pl, name)
}

// BaseImage names the uploaded image the machine's boot disk is backed by
// and gives its modification time as a stamp that changes when the image
// is written (the conformance suite checks that a second machine did not
// upload it again).
func (p *Provider) BaseImage(ctx context.Context, m *vm.Machine) (id, stamp string, err error) {
	defer p.watch(ctx)()
	d, err := p.domainXML(machineDomain(m), golibvirt.DomainXMLInactive)
	if err != nil {
		return "", "", err
	}
	disks := diskPaths(d)
	if len(disks) == 0 {
		return "", "", fmt.Errorf("machine %q has no disk", m.Name)
	}
	vol, err := p.l.StorageVolLookupByPath(disks[0])
	if err != nil {
		return "", "", fmt.Errorf("volume %q: %w", disks[0], err)
	}
	vx, err := p.volXML(vol)
	if err != nil {
		return "", "", err
	}
	if vx.BackingStore == nil || vx.BackingStore.Path == "" {
		return "", "", fmt.Errorf("volume %q has no backing store", disks[0])
	}
	base, err := p.l.StorageVolLookupByPath(vx.BackingStore.Path)
	if err != nil {
		return "", "", fmt.Errorf("volume %q: %w", vx.BackingStore.Path, err)
	}
	bx, err := p.volXML(base)
	if err != nil {
		return "", "", err
	}
	if bx.Target == nil || bx.Target.Timestamps == nil {
		return "", "", fmt.Errorf("volume %q reports no timestamps", base.Name)
	}
	return bx.Target.Path, bx.Target.Timestamps.Mtime, nil
}

func (p *Provider) volXML(vol golibvirt.StorageVol) (libvirtxml.StorageVolume, error) {
	doc, err := p.l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return libvirtxml.StorageVolume{}, fmt.Errorf("volume %q: %w", vol.Name, err)
	}
	var vx libvirtxml.StorageVolume
	if err := vx.Unmarshal(doc); err != nil {
		return libvirtxml.StorageVolume{}, fmt.Errorf("volume %q: %w", vol.Name, err)
	}
	return vx, nil
}

// isLibvirtErr tells whether err is libvirt's error code.
func isLibvirtErr(err error, code golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && le.Code == uint32(code)
}
