package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/devbundle/devbundle/boxes"
	"github.com/devbundle/devbundle/internal/download"
)

// StoreBoxes is the BoxSource backed by the box store: a box already
// stored is used as it is (no network); a missing one is added through the
// same code path as `devbundle box add`.
type StoreBoxes struct {
	Store *boxes.Store
	// Add holds the options every add shares (HTTP client, progress,
	// warnings, download folder); Source, Version, Provider and the
	// checksum come from the request.
	Add boxes.AddOptions
}

// Ensure returns the newest stored box matching req, adding one first when
// none is stored.
func (s *StoreBoxes) Ensure(ctx context.Context, req BoxRequest) (BoxImage, error) {
	if !req.ForceCheck {
		if b, ok, err := s.find(req); err != nil {
			return BoxImage{}, err
		} else if ok {
			return imageOf(b)
		}
	}
	opts := s.Add
	opts.Source, opts.Version, opts.Provider, opts.Insecure = req.Name, req.Version, req.Provider, req.Insecure
	if req.Server != "" {
		opts.Server = req.Server
	}
	if req.Checksum != "" {
		sum, err := download.ParseChecksum(req.Checksum)
		if err != nil {
			return BoxImage{}, err
		}
		opts.Checksum = sum
	}
	b, err := s.Store.Add(ctx, opts)
	if err != nil {
		if found, ok, ferr := s.find(req); ferr == nil && ok && strings.Contains(err.Error(), "already installed") {
			return imageOf(found)
		}
		return BoxImage{}, err
	}
	return imageOf(b)
}

// find looks for a stored box: by name for catalog names, by recorded
// source for URLs and files.
func (s *StoreBoxes) find(req BoxRequest) (boxes.Box, bool, error) {
	all, err := s.Store.Find(boxes.Query{Provider: req.Provider, Constraint: req.Version})
	if err != nil {
		return boxes.Box{}, false, err
	}
	host := boxes.HostArchitecture()
	src := req.Name
	if abs, err := filepath.Abs(src); err == nil && !strings.Contains(src, "://") {
		src = abs
	}
	for _, b := range all { // newest first
		if b.Architecture != host && b.Architecture != boxes.ArchUnknown {
			continue
		}
		if b.Name == req.Name || b.Source.URL == req.Name || b.Source.CatalogURL == req.Name || b.Source.URL == src {
			return b, true, nil
		}
	}
	return boxes.Box{}, false, nil
}

// imageOf describes a stored box for a provider.
func imageOf(b boxes.Box) (BoxImage, error) {
	img := BoxImage{Ref: BoxRef{Name: b.Name, Version: b.Version, Architecture: b.Architecture, Provider: b.Provider}}
	files, err := b.Images()
	if err != nil {
		return BoxImage{}, err
	}
	for i, f := range files {
		path := f
		if !filepath.IsAbs(path) {
			path = filepath.Join(b.Dir, f)
		}
		if strings.HasSuffix(strings.ToLower(path), ".ovf") {
			img.OVF = path
			continue
		}
		format := b.Metadata.Format
		if i < len(b.Metadata.Disks) && b.Metadata.Disks[i].Format != "" {
			format = b.Metadata.Disks[i].Format
		}
		if format == "" && strings.EqualFold(filepath.Ext(path), ".vmdk") {
			format = "vmdk"
		}
		if format == "" {
			format = "qcow2"
		}
		img.Disks = append(img.Disks, Disk{
			Path:   path,
			Format: format,
			Key:    diskKey(b, filepath.Base(path)),
		})
	}
	if len(img.Disks) == 0 && img.OVF == "" {
		return BoxImage{}, fmt.Errorf("box %s has no disk image; remove it with \"devbundle box remove %s --box-version %s\" and add it again", b, b.Name, b.Version)
	}
	if img.OVF != "" {
		// A missing or unreadable Vagrantfile sets no MAC.
		if data, err := os.ReadFile(filepath.Join(b.Dir, "Vagrantfile")); err == nil {
			img.BaseMAC = baseMAC(string(data))
		}
	}
	return img, nil
}

// baseMACLine matches `config.vm.base_mac = "080027D14C66"` (single or
// double quotes, any spacing, any name for the config block's variable),
// as `vagrant package` writes it into a VirtualBox box's Vagrantfile.
var baseMACLine = regexp.MustCompile(`^\s*\w+\.vm\.base_mac\s*=\s*(?:"([^"]*)"|'([^']*)')`)

// baseMAC reads the base MAC a box's Vagrantfile sets; "" when it sets
// none. The last setting wins, as in Ruby; commented-out lines and
// =begin/=end blocks are skipped. Nothing is evaluated.
func baseMAC(vagrantfile string) string {
	mac := ""
	inComment := false
	for _, line := range strings.Split(vagrantfile, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "=begin"):
			inComment = true
			continue
		case strings.HasPrefix(line, "=end"):
			inComment = false
			continue
		case inComment:
			continue
		}
		if m := baseMACLine.FindStringSubmatch(line); m != nil {
			mac = m[1] + m[2]
		}
	}
	return strings.TrimSpace(mac)
}

// BaseImageRemover is implemented by providers that keep an uploaded copy
// of each box disk (libvirt's storage pool).
type BaseImageRemover interface {
	RemoveBaseImage(ctx context.Context, key string) error
}

// ForgetBox removes the provider's uploaded copies of a box's disks, once
// the box has left the store. A copy still backing a machine's disk is
// kept (the provider refuses), and so the error is only worth a warning.
func ForgetBox(ctx context.Context, p Provider, b boxes.Box) error {
	r, ok := p.(BaseImageRemover)
	if !ok {
		return nil
	}
	var errs []error
	for _, d := range diskKeys(b) {
		if err := r.RemoveBaseImage(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// diskKeys are the keys imageOf gives a box's disks; the box's files may
// already be gone, so they are derived from its metadata.
func diskKeys(b boxes.Box) []string {
	files := []string{"box.img"}
	if len(b.Metadata.Disks) > 0 {
		files = nil
		for _, d := range b.Metadata.Disks {
			files = append(files, d.Path)
		}
	}
	var keys []string
	for _, f := range files {
		keys = append(keys, diskKey(b, filepath.Base(f)))
	}
	return keys
}

// diskKey identifies one disk of a box across machines and providers.
func diskKey(b boxes.Box, file string) string {
	return fmt.Sprintf("%s/%s/%s/%s/%s@%s", b.Name, b.Version, b.Architecture, b.Provider, file, b.Source.Checksum)
}

// ForgetBoxes removes the uploaded copies of removed boxes from each
// provider that keeps them, reporting what could not be removed through
// warn. A provider that cannot be reached has nothing to remove here.
func (mgr *Manager) ForgetBoxes(ctx context.Context, removed []boxes.Box, warn func(string)) {
	byProvider := map[string][]boxes.Box{}
	for _, b := range removed {
		byProvider[b.Provider] = append(byProvider[b.Provider], b)
	}
	for name, list := range byProvider {
		if name != "libvirt" {
			continue
		}
		p, err := mgr.Provider(ctx, name)
		if err != nil {
			mgr.IO.Debugf("not removing uploaded box images from %s: %v", name, err)
			continue
		}
		for _, b := range list {
			if err := ForgetBox(ctx, p, b); err != nil {
				warn(fmt.Sprintf("box %s: %v", b, err))
			}
		}
		_ = p.Close()
	}
}
