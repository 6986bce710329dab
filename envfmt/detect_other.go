//go:build !windows

package envfmt

// processAncestors is only needed on Windows, where there is no $SHELL.
func processAncestors() ([]string, error) { return nil, nil }
