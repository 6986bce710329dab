package commands

import (
	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/dberr"
)

// NewCmdCompletion prints a shell completion script.
func NewCmdCompletion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. For example:

  bash:        source <(devbundle completion bash)
  zsh:         devbundle completion zsh > "${fpath[1]}/_devbundle"
  fish:        devbundle completion fish | source
  powershell:  devbundle completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cmdutil.ExactArgs(1, "one shell name (bash, zsh, fish or powershell)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			out := f.IOStreams.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			default:
				return dberr.Usage("unknown shell %q; use bash, zsh, fish or powershell", args[0])
			}
		},
	}
}
