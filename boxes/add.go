package boxes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/devbundle/devbundle/internal/archive"
	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/download"
)

// AddOptions describe one `box add`.
type AddOptions struct {
	// Source is user/name (looked up on Server), a catalog URL, a .box URL
	// or a local .box file (path or file:// URL).
	Source string
	// Name names a box from a .box URL or file (default: the file's base
	// name without .box) and overrides a catalog's name.
	Name string
	// Version is a version constraint for catalog sources ("" = newest).
	Version string
	// Provider is the wanted provider ("" = whatever the box is, or the
	// catalog's only one).
	Provider string
	// Architecture is the wanted architecture for catalog sources ("" = the
	// host's); for .box files it sets the architecture recorded when given.
	Architecture string
	// Checksum is verified against the .box file when set (--checksum); a
	// catalog's own checksum is used when this is zero.
	Checksum download.Checksum
	// Insecure allows a plain-HTTP download without any checksum.
	Insecure bool
	// Force replaces an installed box of the same name, version,
	// architecture and provider.
	Force bool
	// Server is the box registry for user/name sources; "" = DefaultServer.
	Server string
	// Client is the HTTP client for catalogs and downloads; nil = default.
	Client *http.Client
	// DownloadDir keeps partial downloads so an interrupted add resumes;
	// "" = a folder inside the store.
	DownloadDir string
	// Progress receives download (or file read) progress; nil = none.
	Progress download.Progress
	// Warn receives warnings (missing checksum, waiting for a lock); nil =
	// dropped.
	Warn func(string)
	// MaxAttempts and RetryDelay tune download retries (see
	// download.Options); zero values take its defaults.
	MaxAttempts int
	RetryDelay  time.Duration
}

// Add resolves opts.Source, then downloads (or reads), hashes and unpacks
// the box in one streaming pass into a temporary folder in the store,
// validates its metadata.json and moves it into place. Nothing enters the
// store unless every check passed. Two Adds of one box name serialise on a
// lock.
func (s *Store) Add(ctx context.Context, opts AddOptions) (Box, error) {
	src, err := resolveSource(ctx, &opts)
	if err != nil {
		return Box{}, err
	}
	plan, err := s.plan(src, &opts)
	if err != nil {
		return Box{}, err
	}

	unlock, err := s.lock(ctx, plan.name, opts.Warn)
	if err != nil {
		return Box{}, err
	}
	defer func() { _ = unlock() }()

	if plan.provider != "" && !opts.Force {
		if err := s.checkAbsent(plan.name, plan.version, plan.arch, plan.provider); err != nil {
			return Box{}, err
		}
	}

	tmp := filepath.Join(s.root, tmpDir, escapeName(plan.name))
	if err := os.RemoveAll(tmp); err != nil { // left by a crashed run
		return Box{}, fmt.Errorf("box store: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Box{}, fmt.Errorf("box store: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(tmp)
		}
	}()

	source, err := s.unpack(ctx, plan, &opts, tmp)
	if err != nil {
		return Box{}, err
	}
	meta, err := readMetadata(tmp)
	if err != nil {
		return Box{}, fmt.Errorf("add box %q from %s: %w", plan.name, plan.origin(), err)
	}
	if err := meta.Validate(tmp, plan.provider); err != nil {
		return Box{}, fmt.Errorf("add box %q from %s: %w", plan.name, plan.origin(), err)
	}
	arch := plan.arch
	if arch == "" {
		arch = meta.Architecture
	}
	if arch == "" {
		arch = ArchUnknown
	}
	box := Box{
		Name: plan.name, Version: plan.version, Architecture: arch, Provider: meta.Provider,
		Dir: s.Dir(plan.name, plan.version, arch, meta.Provider), Source: source, Metadata: *meta,
	}
	data, err := json.MarshalIndent(box.Source, "", "  ")
	if err != nil {
		return Box{}, err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, SourceFile), append(data, '\n'), 0o644); err != nil {
		return Box{}, err
	}
	if err := s.commit(tmp, box, opts.Force); err != nil {
		return Box{}, err
	}
	committed = true
	return box, nil
}

// addPlan is what will be added, as far as known before unpacking.
type addPlan struct {
	kind       sourceKind
	name       string
	version    string
	arch       string // "" until metadata.json is read (.box sources)
	provider   string // wanted provider; "" = take the box's
	boxURL     string
	filePath   string
	catalogURL string
	checksum   download.Checksum
}

func (p *addPlan) origin() string {
	if p.kind == kindFile {
		return fmt.Sprintf("%q", p.filePath)
	}
	return fmt.Sprintf("%q", p.boxURL)
}

func (s *Store) plan(src *resolved, opts *AddOptions) (*addPlan, error) {
	p := &addPlan{kind: src.kind, provider: opts.Provider, checksum: opts.Checksum}
	switch src.kind {
	case kindCatalog:
		choice, err := src.catalog.Choose(ChooseOptions{Constraint: opts.Version, Provider: opts.Provider, Architecture: opts.Architecture})
		if err != nil {
			return nil, err
		}
		p.name, p.version, p.arch, p.provider = choice.Name, choice.Version, choice.Architecture, choice.Provider.Name
		p.catalogURL = src.catalogURL
		p.boxURL, err = resolveReference(src.catalogURL, choice.Provider.URL)
		if err != nil {
			return nil, fmt.Errorf("box %q %s: invalid url %q in the catalog", choice.Name, choice.Version, choice.Provider.URL)
		}
		if !opts.Checksum.IsZero() && !choice.Checksum.IsZero() && opts.Checksum.Type == choice.Checksum.Type && opts.Checksum.Hex != choice.Checksum.Hex {
			return nil, fmt.Errorf("--checksum %s disagrees with the catalog's %s for box %q %s", opts.Checksum, choice.Checksum, choice.Name, choice.Version)
		}
		if p.checksum.IsZero() {
			p.checksum = choice.Checksum
		}
	case kindURL, kindFile:
		if opts.Version != "" {
			return nil, fmt.Errorf("--box-version applies to catalogs only; %q is a .box file (pass --name to name it)", opts.Source)
		}
		p.version = "0"
		p.arch = opts.Architecture
		p.boxURL, p.filePath = src.boxURL, src.filePath
		if src.kind == kindURL {
			u, _ := url.Parse(src.boxURL)
			p.name = baseName(u.Path)
		} else {
			p.name = baseName(src.filePath)
		}
	}
	if opts.Name != "" {
		p.name = opts.Name
	}
	if err := CheckName(p.name); err != nil {
		return nil, err
	}
	if err := checkVersion(p.version); err != nil {
		return nil, err
	}
	if p.arch != "" && !isPlainWord(p.arch) {
		return nil, fmt.Errorf("invalid architecture %q", p.arch)
	}
	if p.provider != "" && !isPlainWord(p.provider) {
		return nil, fmt.Errorf("invalid provider %q", p.provider)
	}
	if p.kind != kindFile {
		if _, err := download.CheckPolicy(p.boxURL, p.checksum, opts.Insecure); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// resolveReference resolves a catalog's box URL against the catalog's own.
func resolveReference(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

func (s *Store) checkAbsent(name, version, arch, provider string) error {
	if _, err := os.Stat(filepath.Join(s.Dir(name, version, arch, provider), "metadata.json")); err == nil {
		return fmt.Errorf("box %q %s (%s, %s) is already installed; pass --force to replace it", name, version, provider, arch)
	}
	return nil
}

// unpack streams the box into tmp and returns the source record.
func (s *Store) unpack(ctx context.Context, plan *addPlan, opts *AddOptions, tmp string) (Source, error) {
	extract := archive.NewTarStream(ctx, tmp)
	sink := &recordingSink{w: extract}
	var (
		src Source
		err error
	)
	if plan.kind == kindFile {
		src, err = readLocal(ctx, plan, opts, sink)
	} else {
		src, err = s.fetch(ctx, plan, opts, sink)
	}
	if err != nil {
		extract.Abort(err)
		if sink.failed {
			return Source{}, unpackError(plan, err)
		}
		return Source{}, err
	}
	if err := extract.Close(); err != nil {
		return Source{}, unpackError(plan, err)
	}
	src.AddedAt = time.Now().UTC().Truncate(time.Second)
	src.CatalogURL = plan.catalogURL
	return src, nil
}

func unpackError(plan *addPlan, err error) error {
	var ue *archive.UnsafeEntryError
	if errors.As(err, &ue) {
		return fmt.Errorf("add box %q from %s: %w", plan.name, plan.origin(), err)
	}
	return fmt.Errorf("add box %q from %s: unpack: %w", plan.name, plan.origin(), err)
}

// recordingSink notes whether an error came from the extractor.
type recordingSink struct {
	w      io.Writer
	failed bool
}

func (r *recordingSink) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil {
		r.failed = true
	}
	return n, err
}

func (s *Store) fetch(ctx context.Context, plan *addPlan, opts *AddOptions, sink *recordingSink) (Source, error) {
	dir := opts.DownloadDir
	if dir == "" {
		dir = filepath.Join(s.root, downloadsDir)
	}
	key := sha256.Sum256([]byte(plan.boxURL))
	partial := filepath.Join(dir, hex.EncodeToString(key[:12])+".box.partial")
	res, err := download.Fetch(ctx, download.Options{
		URL:         plan.boxURL,
		Checksum:    plan.checksum,
		Insecure:    opts.Insecure,
		PartialPath: partial,
		Sink:        sink,
		Client:      opts.Client,
		Progress:    opts.Progress,
		Warn:        opts.Warn,
		MaxAttempts: opts.MaxAttempts,
		RetryDelay:  opts.RetryDelay,
	})
	if err != nil {
		if sink.failed {
			// The bytes are fine but the archive is not: keeping them would
			// only replay the same refusal next time.
			_ = download.RemovePartial(partial)
		}
		return Source{}, err
	}
	return Source{URL: plan.boxURL, Checksum: res.Checksum.String(), Verified: !plan.checksum.IsZero(), Size: res.Size}, nil
}

func readLocal(ctx context.Context, plan *addPlan, opts *AddOptions, sink io.Writer) (Source, error) {
	f, err := os.Open(plan.filePath)
	if err != nil {
		return Source{}, fmt.Errorf("add box: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return Source{}, fmt.Errorf("add box: %w", err)
	}
	h := plan.checksum.NewHash()
	if opts.Progress != nil {
		opts.Progress.Start(fi.Size())
		defer opts.Progress.Done()
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return Source{}, err
		}
		m, rerr := io.ReadFull(f, buf)
		if m > 0 {
			h.Write(buf[:m])
			if _, err := sink.Write(buf[:m]); err != nil {
				return Source{}, err
			}
			n += int64(m)
			if opts.Progress != nil {
				opts.Progress.Add(int64(m))
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return Source{}, fmt.Errorf("read box file %q: %w", plan.filePath, rerr)
		}
	}
	if err := plan.checksum.Verify(plan.filePath, h); err != nil {
		return Source{}, err
	}
	sum := plan.checksum
	if sum.IsZero() {
		sum = download.Checksum{Type: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	}
	return Source{URL: plan.filePath, Checksum: sum.String(), Verified: !plan.checksum.IsZero(), Size: n}, nil
}

// commit moves the unpacked box from tmp to its place, replacing an
// installed one when force is set.
func (s *Store) commit(tmp string, box Box, force bool) error {
	if err := os.MkdirAll(filepath.Dir(box.Dir), 0o755); err != nil {
		return fmt.Errorf("box store: %w", err)
	}
	_, err := os.Stat(box.Dir)
	exists := err == nil
	if exists && !force {
		return fmt.Errorf("box %s is already installed; pass --force to replace it", box)
	}
	if exists {
		old := tmp + ".old"
		_ = os.RemoveAll(old)
		if err := os.Rename(box.Dir, old); err != nil {
			return fmt.Errorf("replace box %s: %w", box, err)
		}
		if err := os.Rename(tmp, box.Dir); err != nil {
			_ = os.Rename(old, box.Dir)
			return fmt.Errorf("replace box %s: %w", box, err)
		}
		_ = os.RemoveAll(old)
		return nil
	}
	if err := os.Rename(tmp, box.Dir); err != nil {
		return fmt.Errorf("add box %s: %w", box, err)
	}
	return nil
}
