package boxes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	version "github.com/hashicorp/go-version"

	"github.com/devbundle/devbundle/internal/filelock"
)

// slashEscape replaces "/" in box names on disk, as Vagrant does.
const slashEscape = "-VAGRANTSLASH-"

// SourceFile is the file in each box folder recording where it came from.
const SourceFile = "devbundle-source.json"

// Folders of the store that are not boxes.
const (
	locksDir     = ".locks"
	tmpDir       = ".tmp"
	downloadsDir = ".downloads"
)

// Store is a folder of unpacked boxes.
type Store struct {
	root string
}

// NewStore returns the store kept in root (created when first written).
func NewStore(root string) *Store { return &Store{root: root} }

// Root is the store's folder.
func (s *Store) Root() string { return s.root }

// Box is one unpacked box in a Store.
type Box struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Provider     string `json:"provider"`
	// Dir is the folder holding metadata.json, the disk image(s) and the
	// box's Vagrantfile.
	Dir string `json:"dir"`
	// Source records where the box came from.
	Source Source `json:"source"`
	// Metadata is the box's metadata.json (zero if unreadable).
	Metadata Metadata `json:"metadata"`
}

// Source records where a box came from, for `box outdated` and for users.
type Source struct {
	// URL is the .box URL, or the absolute path of a local .box file.
	URL string `json:"url"`
	// CatalogURL is the catalog the box was chosen from, if any.
	CatalogURL string `json:"catalog_url,omitempty"`
	// Checksum is "TYPE:HEX": the checksum verified, or the sha256 computed
	// while adding when none was given.
	Checksum string `json:"checksum,omitempty"`
	// Verified reports that Checksum was given and verified.
	Verified bool `json:"verified"`
	// Size is the size of the .box file in bytes.
	Size int64 `json:"size"`
	// AddedAt is when the box entered the store.
	AddedAt time.Time `json:"added_at"`
}

// String names a box the way messages do: name version (provider, arch).
func (b Box) String() string {
	return fmt.Sprintf("%s %s (%s, %s)", b.Name, b.Version, b.Provider, b.Architecture)
}

// Images returns the absolute paths of the box's disk images.
func (b Box) Images() ([]string, error) {
	rel, err := b.Metadata.Images(b.Dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rel))
	for i, r := range rel {
		out[i] = filepath.Join(b.Dir, r)
	}
	return out, nil
}

// CheckName checks a box name: one or more "/"-separated words of letters,
// digits, '.', '_', '+' and '-', none starting with '.'.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid box name %q: %s; pass --name with a name like user/box", name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > 200 {
		return bad("longer than 200 characters")
	}
	if strings.Contains(name, slashEscape) {
		return bad("contains " + slashEscape)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return bad("empty part between slashes")
		}
		if part[0] == '.' {
			return bad("a part starts with '.'")
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-", r)) {
				return bad(fmt.Sprintf("character %q is not allowed", r))
			}
		}
	}
	if !filepath.IsLocal(escapeName(name)) {
		return bad("not a valid folder name on this system")
	}
	return nil
}

func checkVersion(v string) error {
	if _, err := version.NewVersion(v); err != nil || strings.ContainsAny(v, `/\`) || strings.HasPrefix(v, ".") {
		return fmt.Errorf("invalid box version %q", v)
	}
	return nil
}

func escapeName(name string) string         { return strings.ReplaceAll(name, "/", slashEscape) }
func unescapeName(dir string) string        { return strings.ReplaceAll(dir, slashEscape, "/") }
func (s *Store) nameDir(name string) string { return filepath.Join(s.root, escapeName(name)) }

// Dir is the folder a box of these coordinates is kept in.
func (s *Store) Dir(name, version, arch, provider string) string {
	return filepath.Join(s.nameDir(name), version, arch, provider)
}

// lock takes the lock serialising changes to the boxes of one name.
func (s *Store) lock(ctx context.Context, name string, warn func(string)) (filelock.Unlock, error) {
	dir := filepath.Join(s.root, locksDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("box store: %w", err)
	}
	path := filepath.Join(dir, escapeName(name)+".lock")
	unlock, ok, err := filelock.TryLock(path)
	if err != nil {
		return nil, err
	}
	if ok {
		return unlock, nil
	}
	if warn != nil {
		warn(fmt.Sprintf("waiting for another devbundle process working on box %q", name))
	}
	return filelock.Lock(ctx, path)
}

// List returns every box in the store, sorted by name, then newest version
// first, then provider and architecture.
func (s *Store) List() ([]Box, error) {
	names, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list boxes: %w", err)
	}
	var out []Box
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") {
			continue
		}
		name := unescapeName(n.Name())
		if CheckName(name) != nil {
			continue
		}
		versions, _ := os.ReadDir(filepath.Join(s.root, n.Name()))
		for _, v := range versions {
			if !v.IsDir() || checkVersion(v.Name()) != nil {
				continue
			}
			arches, _ := os.ReadDir(filepath.Join(s.root, n.Name(), v.Name()))
			for _, a := range arches {
				if !a.IsDir() || !isPlainWord(a.Name()) {
					continue
				}
				provs, _ := os.ReadDir(filepath.Join(s.root, n.Name(), v.Name(), a.Name()))
				for _, p := range provs {
					if !p.IsDir() || !isPlainWord(p.Name()) {
						continue
					}
					if b, ok := s.load(name, v.Name(), a.Name(), p.Name()); ok {
						out = append(out, b)
					}
				}
			}
		}
	}
	sortBoxes(out)
	return out, nil
}

// load reads one box folder; ok is false if it holds no metadata.json.
func (s *Store) load(name, ver, arch, provider string) (Box, bool) {
	dir := s.Dir(name, ver, arch, provider)
	b := Box{Name: name, Version: ver, Architecture: arch, Provider: provider, Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if err != nil {
		return Box{}, false
	}
	if m, err := ParseMetadata(data); err == nil {
		b.Metadata = *m
	}
	if data, err := os.ReadFile(filepath.Join(dir, SourceFile)); err == nil {
		_ = json.Unmarshal(data, &b.Source)
	}
	return b, true
}

func sortBoxes(bs []Box) {
	sort.SliceStable(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if c := compareVersions(a.Version, b.Version); c != 0 {
			return c > 0
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Architecture < b.Architecture
	})
}

// compareVersions compares two box versions, falling back to string order
// for unparseable ones.
func compareVersions(a, b string) int {
	va, errA := version.NewVersion(a)
	vb, errB := version.NewVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

// Query selects boxes of a Store. Empty fields match anything.
type Query struct {
	Name         string
	Version      string // an exact version
	Constraint   string // a version constraint such as ">= 1.0"
	Provider     string
	Architecture string
}

// Find returns the boxes matching q, newest version first.
func (s *Store) Find(q Query) ([]Box, error) {
	var constraint version.Constraints
	if q.Constraint != "" {
		c, err := version.NewConstraint(q.Constraint)
		if err != nil {
			return nil, fmt.Errorf("invalid version constraint %q", q.Constraint)
		}
		constraint = c
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []Box
	for _, b := range all {
		if (q.Name != "" && b.Name != q.Name) || (q.Version != "" && b.Version != q.Version) ||
			(q.Provider != "" && b.Provider != q.Provider) || (q.Architecture != "" && b.Architecture != q.Architecture) {
			continue
		}
		if constraint != nil {
			v, err := version.NewVersion(b.Version)
			if err != nil || !constraint.Check(v) {
				continue
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// removeBox takes a box folder out of the store: renamed away first, so the
// box disappears at once, then deleted, then its emptied parents removed.
func (s *Store) removeBox(b Box) error {
	trashRoot := filepath.Join(s.root, tmpDir)
	if err := os.MkdirAll(trashRoot, 0o755); err != nil {
		return fmt.Errorf("remove box %s: %w", b, err)
	}
	trash, err := os.MkdirTemp(trashRoot, "remove-")
	if err != nil {
		return fmt.Errorf("remove box %s: %w", b, err)
	}
	moved := filepath.Join(trash, "box")
	if err := os.Rename(b.Dir, moved); err != nil {
		_ = os.Remove(trash)
		return fmt.Errorf("remove box %s: %w", b, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove box %s: delete files: %w", b, err)
	}
	s.pruneEmptyParents(filepath.Dir(b.Dir))
	return nil
}

// pruneEmptyParents removes dir and its parents up to the store root while
// they are empty.
func (s *Store) pruneEmptyParents(dir string) {
	root := filepath.Clean(s.root)
	for d := filepath.Clean(dir); d != root && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}
