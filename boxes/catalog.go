// Package boxes finds, downloads, verifies and keeps the Vagrant boxes that
// devbundle boots machines from.
//
// A Store is a folder laid out as <root>/<name>/<version>/<arch>/<provider>/,
// the "/" of user/name escaped as "-VAGRANTSLASH-" as Vagrant does. Store.Add
// resolves a source (user/name on a box server, a catalog URL, a .box URL or
// a local .box file), downloads, hashes and unpacks the box in one streaming
// pass into a temporary folder, validates it and only then renames it into
// place, holding a per-box lock throughout.
package boxes

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"

	version "github.com/hashicorp/go-version"

	"github.com/devbundle/devbundle/internal/download"
)

// Catalog is a box's metadata document as box servers publish it: every
// version, and for each the providers it is built for.
type Catalog struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Versions    []CatalogVersion `json:"versions"`
}

// CatalogVersion is one version of a box in a Catalog.
type CatalogVersion struct {
	Version   string            `json:"version"`
	Providers []CatalogProvider `json:"providers"`
}

// CatalogProvider is one downloadable .box file of a version.
type CatalogProvider struct {
	Name                string `json:"name"`
	URL                 string `json:"url"`
	ChecksumType        string `json:"checksum_type,omitempty"`
	Checksum            string `json:"checksum,omitempty"`
	Architecture        string `json:"architecture,omitempty"`
	DefaultArchitecture bool   `json:"default_architecture,omitempty"`
}

// ArchUnknown is the architecture of a box that does not name one.
const ArchUnknown = "unknown"

// ParseCatalog parses and checks a catalog document, reporting every
// problem found at once.
func ParseCatalog(data []byte) (*Catalog, error) {
	var c Catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("invalid box catalog: %w", err)
	}
	var problems []string
	for i, v := range c.Versions {
		if _, err := version.NewVersion(v.Version); err != nil {
			problems = append(problems, fmt.Sprintf("versions[%d]: invalid version %q", i, v.Version))
		}
		for j, p := range v.Providers {
			where := fmt.Sprintf("versions[%d] (%s) providers[%d]", i, v.Version, j)
			if p.Name == "" {
				problems = append(problems, where+": no provider name")
			} else if !isPlainWord(p.Name) {
				problems = append(problems, fmt.Sprintf("%s: invalid provider name %q", where, p.Name))
			}
			if p.URL == "" {
				problems = append(problems, where+": no url")
			}
			if p.Architecture != "" && !isPlainWord(p.Architecture) {
				problems = append(problems, fmt.Sprintf("%s: invalid architecture %q", where, p.Architecture))
			}
			if _, err := download.NewChecksum(p.ChecksumType, p.Checksum); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid box catalog %q: %s", c.Name, strings.Join(problems, "; "))
	}
	return &c, nil
}

// HostArchitecture names the machine's architecture as box catalogs do.
func HostArchitecture() string { return goarchToBox(runtime.GOARCH) }

func goarchToBox(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	default: // amd64, arm64 and the rest keep their Go names
		return goarch
	}
}

// ChooseOptions say which box of a catalog is wanted.
type ChooseOptions struct {
	// Constraint limits versions, e.g. ">= 1.2, < 2" or "~> 1.2"; "" takes
	// any version.
	Constraint string
	// Provider is the wanted provider; "" takes the only one offered.
	Provider string
	// Architecture is the wanted architecture; "" means HostArchitecture().
	Architecture string
}

// Choice is the box picked from a catalog.
type Choice struct {
	Name     string
	Version  string
	Provider CatalogProvider
	// Architecture is the provider's architecture, or ArchUnknown when it
	// names none.
	Architecture string
	Checksum     download.Checksum
}

// Choose picks the newest version satisfying the constraint (without one:
// the newest release, prereleases only when a constraint names them) that
// offers the wanted provider for the wanted architecture, falling back to a provider
// of architecture "unknown" marked default_architecture (or the provider's
// only entry when the catalog gives no architectures). When nothing fits,
// the error lists what the catalog does offer.
func (c *Catalog) Choose(opts ChooseOptions) (Choice, error) {
	var constraint version.Constraints
	if opts.Constraint != "" {
		var err error
		constraint, err = version.NewConstraint(opts.Constraint)
		if err != nil {
			return Choice{}, fmt.Errorf("invalid version constraint %q: write it like \">= 1.0, < 2\" or \"~> 1.2\"", opts.Constraint)
		}
	}
	check := func(v *version.Version) bool {
		if constraint == nil {
			return v.Prerelease() == "" // prereleases only when asked for
		}
		return constraint.Check(v)
	}
	arch := opts.Architecture
	if arch == "" {
		arch = HostArchitecture()
	}
	versions := c.sortedVersions()
	matched := 0
	for _, v := range versions {
		if !check(v.parsed) {
			continue
		}
		matched++
		picks := pickProviders(v.Providers, opts.Provider, arch)
		if len(picks) == 0 {
			continue
		}
		if len(picks) > 1 {
			var names []string
			for _, p := range picks {
				names = append(names, p.Name)
			}
			return Choice{}, fmt.Errorf("box %q %s is offered for several providers (%s): pass --provider",
				c.Name, v.Version, strings.Join(names, ", "))
		}
		p := picks[0]
		sum, err := download.NewChecksum(p.ChecksumType, p.Checksum)
		if err != nil {
			return Choice{}, fmt.Errorf("box %q %s: %w", c.Name, v.Version, err)
		}
		a := p.Architecture
		if a == "" {
			a = ArchUnknown
		}
		return Choice{Name: c.Name, Version: v.Version, Provider: p, Architecture: a, Checksum: sum}, nil
	}
	if len(versions) == 0 {
		return Choice{}, fmt.Errorf("box %q has no versions in its catalog", c.Name)
	}
	if matched == 0 {
		var all []string
		for _, v := range versions {
			all = append(all, v.Version)
		}
		if opts.Constraint == "" {
			return Choice{}, fmt.Errorf("box %q has no released version; available: %s (pass --box-version to pick a prerelease)", c.Name, strings.Join(limit(all, 10), ", "))
		}
		return Choice{}, fmt.Errorf("box %q has no version matching %q; available: %s", c.Name, opts.Constraint, strings.Join(limit(all, 10), ", "))
	}
	want := "any provider"
	if opts.Provider != "" {
		want = fmt.Sprintf("provider %q", opts.Provider)
	}
	scope := ""
	if opts.Constraint != "" {
		scope = fmt.Sprintf(" in versions matching %q", opts.Constraint)
	}
	return Choice{}, fmt.Errorf("box %q has no %s for architecture %q%s; available: %s (pass --provider or --architecture to pick one)",
		c.Name, want, arch, scope, strings.Join(limit(c.offers(versions, check), 6), "; "))
}

// pickProviders returns the entries of one version that fit, one per
// provider name: an exact architecture match, failing that the default (or
// only) entry of unknown architecture.
func pickProviders(ps []CatalogProvider, provider, arch string) []CatalogProvider {
	count := map[string]int{}
	var order []string
	for _, p := range ps {
		if count[p.Name] == 0 {
			order = append(order, p.Name)
		}
		count[p.Name]++
	}
	var out []CatalogProvider
	for _, name := range order {
		if provider != "" && name != provider {
			continue
		}
		var exact, fallback *CatalogProvider
		for i := range ps {
			p := &ps[i]
			if p.Name != name {
				continue
			}
			switch {
			case p.Architecture == arch && exact == nil:
				exact = p
			case (p.Architecture == "" || p.Architecture == ArchUnknown) && (p.DefaultArchitecture || count[name] == 1) && fallback == nil:
				fallback = p
			}
		}
		if exact != nil {
			out = append(out, *exact)
		} else if fallback != nil {
			out = append(out, *fallback)
		}
	}
	return out
}

func (c *Catalog) offers(versions []parsedVersion, check func(*version.Version) bool) []string {
	var out []string
	for _, v := range versions {
		if !check(v.parsed) {
			continue
		}
		var ps []string
		for _, p := range v.Providers {
			a := p.Architecture
			if a == "" {
				a = ArchUnknown
			}
			ps = append(ps, fmt.Sprintf("%s (%s)", p.Name, a))
		}
		if len(ps) == 0 {
			ps = []string{"no providers"}
		}
		out = append(out, v.Version+": "+strings.Join(ps, ", "))
	}
	return out
}

type parsedVersion struct {
	CatalogVersion
	parsed *version.Version
}

// sortedVersions returns the parseable versions, newest first.
func (c *Catalog) sortedVersions() []parsedVersion {
	var vs []parsedVersion
	for _, v := range c.Versions {
		p, err := version.NewVersion(v.Version)
		if err != nil {
			continue
		}
		vs = append(vs, parsedVersion{v, p})
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].parsed.GreaterThan(vs[j].parsed) })
	return vs
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}

// isPlainWord accepts provider and architecture names: letters, digits,
// '_' and '-'.
func isPlainWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
