package clibins

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/devbundle/devbundle/envfmt"
)

// DocumentOptions say how a Result is printed.
type DocumentOptions struct {
	// PATH is the PATH the output's export extends.
	PATH string
	// ListSeparator separates PATH entries; 0 means this system's.
	ListSeparator rune
	// ApplyCommand is the command line that prints the document, for the
	// closing hint (see envfmt.Document).
	ApplyCommand []string
}

// Document is what install-cli prints for r: where the binary is, as
// comments, then the PATH export that puts its folder first (none when the
// binary is already the one on PATH), for envfmt to render for the user's
// shell, so that the output can be evaluated.
func (r Result) Document(opts DocumentOptions) envfmt.Document {
	name := r.Client.Name
	if r.From == FromPATH {
		return envfmt.Document{Blocks: []envfmt.Block{{Comment: []string{
			"The " + name + " " + r.Version + " client already on your PATH matches the server:",
			"  " + r.Path,
			"It is used as it is; PATH needs no change.",
		}}}}
	}
	dir := filepath.Dir(r.Path)
	return envfmt.Document{
		Blocks: []envfmt.Block{{
			Comment: []string{
				"The " + name + " " + r.Version + " client for " + r.Platform.String() + " is installed at:",
				"  " + r.Path,
				"This puts its folder first on your PATH, so that " + name + " runs it:",
			},
			Vars: []envfmt.Var{{Name: "PATH", Value: PrependPath(dir, opts.PATH, opts.ListSeparator)}},
		}},
		ApplyCommand: opts.ApplyCommand,
	}
}

// PrependPath puts dir first in the list path (entries separated by sep,
// or this system's separator when sep is 0), dropping its other
// occurrences and empty entries, so that applying the output twice changes
// nothing.
func PrependPath(dir, path string, sep rune) string {
	if sep == 0 {
		sep = os.PathListSeparator
	}
	parts := []string{dir}
	for _, p := range strings.Split(path, string(sep)) {
		if p == "" || filepath.Clean(p) == filepath.Clean(dir) {
			continue
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, string(sep))
}
