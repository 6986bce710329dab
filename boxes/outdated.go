package boxes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ErrNoCatalog is the Err of an OutdatedReport for a box that was added
// from a .box file or URL, so has no catalog to compare with.
var ErrNoCatalog = errors.New("added from a .box file or URL, not from a catalog")

// OutdatedOptions tune `box outdated`.
type OutdatedOptions struct {
	// Name limits the check to one box name; "" checks every box.
	Name string
	// Client is the HTTP client for catalogs; nil = default.
	Client *http.Client
	// Warn receives warnings; nil = dropped.
	Warn func(string)
}

// OutdatedReport is the verdict on the newest installed box of one name,
// provider and architecture.
type OutdatedReport struct {
	Box Box
	// Latest is the newest version the catalog offers for the box's
	// provider and architecture ("" when unknown).
	Latest string
	// Outdated reports Latest is newer than the installed version.
	Outdated bool
	// Err says why no verdict could be reached: the box has no catalog, or
	// the catalog could not be read or offers nothing that fits.
	Err error
}

// Outdated asks each installed box's catalog for its newest version. Only
// the newest installed version of each name, provider and architecture is
// reported; catalogs are fetched once each. A catalog that cannot be read
// is reported in that box's Err, not as an error of the whole call.
func (s *Store) Outdated(ctx context.Context, opts OutdatedOptions) ([]OutdatedReport, error) {
	all, err := s.Find(Query{Name: opts.Name})
	if err != nil {
		return nil, err
	}
	type fetched struct {
		cat *Catalog
		err error
	}
	catalogs := map[string]fetched{}
	seen := map[string]bool{}
	var out []OutdatedReport
	for _, b := range all { // newest version first within a name
		key := b.Name + "\x00" + b.Provider + "\x00" + b.Architecture
		if seen[key] {
			continue
		}
		seen[key] = true
		r := OutdatedReport{Box: b}
		if b.Source.CatalogURL == "" {
			r.Err = ErrNoCatalog
			out = append(out, r)
			continue
		}
		f, ok := catalogs[b.Source.CatalogURL]
		if !ok {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			addOpts := &AddOptions{Client: opts.Client, Warn: opts.Warn}
			f.cat, _, f.err = fetchCatalog(ctx, addOpts, b.Source.CatalogURL, false)
			catalogs[b.Source.CatalogURL] = f
		}
		if f.err != nil {
			r.Err = f.err
			out = append(out, r)
			continue
		}
		arch := b.Architecture
		if arch == ArchUnknown {
			arch = HostArchitecture()
		}
		choice, err := f.cat.Choose(ChooseOptions{Provider: b.Provider, Architecture: arch})
		if err != nil {
			r.Err = fmt.Errorf("catalog %q: %w", b.Source.CatalogURL, err)
			out = append(out, r)
			continue
		}
		r.Latest = choice.Version
		r.Outdated = compareVersions(choice.Version, b.Version) > 0
		out = append(out, r)
	}
	return out, nil
}
