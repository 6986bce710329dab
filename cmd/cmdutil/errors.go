package cmdutil

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/internal/dberr"
)

// ExactArgs is cobra.ExactArgs whose error counts as a usage error.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return dberr.Usage("%s takes %s; see %q", cmd.CommandPath(), what, cmd.CommandPath()+" --help")
		}
		return nil
	}
}

// MaxArgs allows at most n arguments.
func MaxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return dberr.Usage("%s takes %s, got %d arguments; see %q", cmd.CommandPath(), what, len(args), cmd.CommandPath()+" --help")
		}
		return nil
	}
}

// NoArgs refuses any argument.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return dberr.Usage("%s takes no arguments, got %q; see %q", cmd.CommandPath(), args[0], cmd.CommandPath()+" --help")
	}
	return nil
}

// FlagError wraps a flag parsing error as a usage error.
func FlagError(cmd *cobra.Command, err error) error {
	return dberr.Usage("%s; see %q", err, fmt.Sprintf("%s --help", cmd.CommandPath()))
}

// ExitCodeError carries an exit code to pass through unchanged, such as
// the exit code of a command run with `devbundle ssh -- CMD`. It prints
// nothing.
type ExitCodeError struct{ Code int }

func (e *ExitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }
