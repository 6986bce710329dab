package commands

import (
	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
)

// NewCmdBox groups the box commands.
func NewCmdBox(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "box",
		Short: "Manage the Vagrant boxes devbundle boots machines from",
		Args:  cmdutil.NoArgs,
	}
	ip := NewCmdIP(f)
	cmd.AddCommand(NewCmdBoxVersion(f), ip)
	return cmd
}
