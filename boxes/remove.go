package boxes

import (
	"context"
	"fmt"
	"strings"
)

// InUseFunc reports the machines using a box; an empty list means unused.
type InUseFunc func(Box) ([]string, error)

// RemoveOptions select the boxes `box remove` deletes.
type RemoveOptions struct {
	// Name is the box name (required).
	Name string
	// Version, Provider and Architecture narrow the selection; "" matches
	// any.
	Version      string
	Provider     string
	Architecture string
	// All removes every match; without it more than one match is an error.
	All bool
	// Force removes boxes that machines use.
	Force bool
	// InUse reports which machines use a box; nil = none do.
	InUse InUseFunc
	// Warn receives warnings (waiting for a lock); nil = dropped.
	Warn func(string)
}

// Remove deletes the selected boxes and returns them. It refuses when the
// selection is ambiguous (unless All) or a box is in use (unless Force),
// listing what it found.
func (s *Store) Remove(ctx context.Context, opts RemoveOptions) ([]Box, error) {
	if err := CheckName(opts.Name); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, opts.Name, opts.Warn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unlock() }()

	installed, err := s.Find(Query{Name: opts.Name})
	if err != nil {
		return nil, err
	}
	if len(installed) == 0 {
		return nil, fmt.Errorf("box %q is not installed; see `devbundle box list`", opts.Name)
	}
	matches, err := s.Find(Query{Name: opts.Name, Version: opts.Version, Provider: opts.Provider, Architecture: opts.Architecture})
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("no installed box %q matches %s; installed: %s", opts.Name, describeFilter(opts), describeBoxes(installed))
	}
	if len(matches) > 1 && !opts.All {
		return nil, fmt.Errorf("%d boxes match %q: %s; pass --box-version, --provider or --architecture to pick one, or --all",
			len(matches), opts.Name, describeBoxes(matches))
	}
	if !opts.Force {
		var problems []string
		for _, b := range matches {
			users, err := inUse(opts.InUse, b)
			if err != nil {
				return nil, err
			}
			if len(users) > 0 {
				problems = append(problems, fmt.Sprintf("%s is used by %s", b, quoteAll(users)))
			}
		}
		if len(problems) > 0 {
			return nil, fmt.Errorf("%s; destroy those machines first or pass --force", strings.Join(problems, "; "))
		}
	}
	var removed []Box
	for _, b := range matches {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if err := s.removeBox(b); err != nil {
			return removed, err
		}
		removed = append(removed, b)
	}
	return removed, nil
}

// PruneOptions tune `box prune`.
type PruneOptions struct {
	// Name limits pruning to one box name; "" prunes every box.
	Name string
	// DryRun reports what would be removed without removing anything.
	DryRun bool
	// InUse reports which machines use a box; boxes in use are kept.
	InUse InUseFunc
	// Warn receives warnings; nil = dropped.
	Warn func(string)
}

// Prune removes every box that is neither the newest version of its name,
// provider and architecture nor used by a machine, and returns the boxes
// removed (or, with DryRun, the ones that would be).
func (s *Store) Prune(ctx context.Context, opts PruneOptions) ([]Box, error) {
	if opts.Name != "" {
		if err := CheckName(opts.Name); err != nil {
			return nil, err
		}
	}
	all, err := s.Find(Query{Name: opts.Name})
	if err != nil {
		return nil, err
	}
	byName := map[string][]Box{}
	var names []string
	for _, b := range all {
		if _, ok := byName[b.Name]; !ok {
			names = append(names, b.Name)
		}
		byName[b.Name] = append(byName[b.Name], b)
	}
	var removed []Box
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		r, err := s.pruneName(ctx, name, opts)
		removed = append(removed, r...)
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Store) pruneName(ctx context.Context, name string, opts PruneOptions) ([]Box, error) {
	unlock, err := s.lock(ctx, name, opts.Warn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unlock() }()
	boxes, err := s.Find(Query{Name: name}) // newest first, read under the lock
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var removed []Box
	for _, b := range boxes {
		key := b.Provider + "\x00" + b.Architecture
		if !seen[key] {
			seen[key] = true // the newest of its kind stays
			continue
		}
		users, err := inUse(opts.InUse, b)
		if err != nil {
			return removed, err
		}
		if len(users) > 0 {
			continue
		}
		if !opts.DryRun {
			if err := s.removeBox(b); err != nil {
				return removed, err
			}
		}
		removed = append(removed, b)
	}
	return removed, nil
}

func inUse(f InUseFunc, b Box) ([]string, error) {
	if f == nil {
		return nil, nil
	}
	users, err := f(b)
	if err != nil {
		return nil, fmt.Errorf("check whether box %s is in use: %w", b, err)
	}
	return users, nil
}

func describeFilter(o RemoveOptions) string {
	var parts []string
	if o.Version != "" {
		parts = append(parts, "version "+o.Version)
	}
	if o.Provider != "" {
		parts = append(parts, "provider "+o.Provider)
	}
	if o.Architecture != "" {
		parts = append(parts, "architecture "+o.Architecture)
	}
	if len(parts) == 0 {
		return "the filter"
	}
	return strings.Join(parts, ", ")
}

func describeBoxes(bs []Box) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", b.Version, b.Provider, b.Architecture))
	}
	return strings.Join(limit(parts, 10), ", ")
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "machine " + strings.Join(q, ", ")
}
