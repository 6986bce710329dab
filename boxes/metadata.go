package boxes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Provider names devbundle can boot.
const (
	ProviderLibvirt    = "libvirt"
	ProviderVirtualBox = "virtualbox"
)

// Metadata is a box's metadata.json.
type Metadata struct {
	// Provider is the only required field.
	Provider string `json:"provider"`
	// Format is the disk format of a libvirt box.img (qcow2).
	Format string `json:"format,omitempty"`
	// VirtualSizeGB is the disk size of a libvirt box.img, in GB.
	VirtualSizeGB float64 `json:"virtual_size,omitempty"`
	// Architecture is set by some newer boxes.
	Architecture string `json:"architecture,omitempty"`
	// Disks lists the images of a newer multi-disk libvirt box; when empty,
	// a libvirt box has one image, box.img.
	Disks []Disk `json:"disks,omitempty"`
}

// Disk is one image of a multi-disk libvirt box.
type Disk struct {
	// Path is the image file, relative to the box folder.
	Path string `json:"path"`
	// Name optionally names the volume made from it.
	Name string `json:"name,omitempty"`
	// Format is the image format (qcow2) when given.
	Format string `json:"format,omitempty"`
}

// ParseMetadata parses a box's metadata.json and checks its fields,
// reporting every problem at once.
func ParseMetadata(data []byte) (*Metadata, error) {
	var raw struct {
		Provider     string          `json:"provider"`
		Format       string          `json:"format"`
		VirtualSize  json.RawMessage `json:"virtual_size"`
		Architecture string          `json:"architecture"`
		Disks        []Disk          `json:"disks"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid box metadata.json: %w", err)
	}
	m := &Metadata{Provider: raw.Provider, Format: raw.Format, Architecture: raw.Architecture, Disks: raw.Disks}
	var problems []string
	if m.Provider == "" {
		problems = append(problems, `no "provider"`)
	} else if !isPlainWord(m.Provider) {
		problems = append(problems, fmt.Sprintf("invalid provider %q", m.Provider))
	}
	if m.Architecture != "" && !isPlainWord(m.Architecture) {
		problems = append(problems, fmt.Sprintf("invalid architecture %q", m.Architecture))
	}
	if len(raw.VirtualSize) > 0 && string(raw.VirtualSize) != "null" {
		size, err := parseSize(raw.VirtualSize)
		if err != nil {
			problems = append(problems, fmt.Sprintf("invalid virtual_size %s: want a number of GB", raw.VirtualSize))
		}
		m.VirtualSizeGB = size
	}
	for i, d := range m.Disks {
		if d.Path == "" {
			problems = append(problems, fmt.Sprintf("disks[%d]: no path", i))
		} else if _, err := boxFilePath(d.Path); err != nil {
			problems = append(problems, fmt.Sprintf("disks[%d]: %v", i, err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid box metadata.json: %s", strings.Join(problems, "; "))
	}
	return m, nil
}

// parseSize accepts a JSON number or a string holding one.
func parseSize(raw json.RawMessage) (float64, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0, errors.New("not a size")
	}
	return f, nil
}

// boxFilePath checks a file name from metadata.json: relative, inside the
// box folder.
func boxFilePath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || strings.ContainsRune(p, 0) ||
		(len(p) >= 2 && p[1] == ':') {
		return "", fmt.Errorf("path %q must be relative to the box folder", p)
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return "", fmt.Errorf("path %q leaves the box folder", p)
	}
	local, err := filepath.Localize(clean)
	if err != nil {
		return "", fmt.Errorf("path %q is not a valid file name here", p)
	}
	return local, nil
}

// Images returns the disk image files of the box in dir, relative to it:
// for libvirt the disks list or box.img; for VirtualBox the .ovf file(s)
// and .vmdk disks found in dir.
func (m *Metadata) Images(dir string) ([]string, error) {
	switch m.Provider {
	case ProviderLibvirt:
		if len(m.Disks) == 0 {
			return []string{"box.img"}, nil
		}
		var out []string
		for _, d := range m.Disks {
			p, err := boxFilePath(d.Path)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	case ProviderVirtualBox:
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.Type().IsRegular() && (ext == ".ovf" || ext == ".vmdk") {
				out = append(out, e.Name())
			}
		}
		return out, nil
	}
	return nil, nil
}

// Validate checks an unpacked box in dir against its metadata: a provider
// devbundle can run, equal to want when want is set, and its disk images
// present.
func (m *Metadata) Validate(dir, want string) error {
	if want != "" && m.Provider != want {
		return fmt.Errorf("the box is for provider %q, not %q: pass --provider %s or pick the %s build of the box", m.Provider, want, m.Provider, want)
	}
	switch m.Provider {
	case ProviderLibvirt:
		images, err := m.Images(dir)
		if err != nil {
			return err
		}
		for _, img := range images {
			fi, err := os.Stat(filepath.Join(dir, img))
			if err != nil || !fi.Mode().IsRegular() {
				return fmt.Errorf("invalid libvirt box: disk image %q is missing from the archive", filepath.ToSlash(img))
			}
		}
	case ProviderVirtualBox:
		images, err := m.Images(dir)
		if err != nil {
			return err
		}
		hasOVF := false
		for _, img := range images {
			if strings.EqualFold(filepath.Ext(img), ".ovf") {
				hasOVF = true
			}
		}
		if !hasOVF {
			return errors.New("invalid virtualbox box: no .ovf file in the archive")
		}
	default:
		return fmt.Errorf("unsupported box provider %q: devbundle runs %s and %s boxes", m.Provider, ProviderLibvirt, ProviderVirtualBox)
	}
	return nil
}

// readMetadata reads dir/metadata.json.
func readMetadata(dir string) (*Metadata, error) {
	data, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("invalid box: no metadata.json in the archive")
	}
	if err != nil {
		return nil, err
	}
	return ParseMetadata(data)
}
