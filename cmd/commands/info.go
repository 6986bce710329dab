package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/vm"
)

// NewCmdIP creates the `ip` command (also `box ip`).
func NewCmdIP(f *cmdutil.Factory) *cobra.Command {
	var script bool
	cmd := &cobra.Command{
		Use:   "ip",
		Short: "Print the address the host reaches the machine on",
		Long: `Print the address the host reaches the machine's services on: the VM's own
address in libvirt network mode, 127.0.0.1 (forwarded ports) in user mode.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.Paths()
			if err != nil {
				return err
			}
			m, err := vm.Store{Root: p.Machines()}.LoadReachable(f.Machine)
			if err != nil {
				return err
			}
			ip := m.Address
			if ip == "" {
				ip = "127.0.0.1"
			}
			if script {
				_, err = fmt.Fprintf(f.IOStreams.Out, "IP=%s\n", ip)
			} else {
				_, err = fmt.Fprintln(f.IOStreams.Out, ip)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&script, "script-readable", false, "print IP=<address>")
	return cmd
}

// NewCmdBoxVersion creates `box version`: the box's VARIANT lines from the
// guest's /etc/os-release.
func NewCmdBoxVersion(f *cmdutil.Factory) *cobra.Command {
	var script bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the running box's variant and version (from its /etc/os-release)",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mgr, _, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			client, _, err := mgr.Connect(cmd.Context(), f.Machine)
			if err != nil {
				return err
			}
			defer client.Close()
			rel, err := vm.ReadOSRelease(cmd.Context(), client)
			if err != nil {
				return err
			}
			out := f.IOStreams.Out
			if script {
				for _, k := range []string{"VARIANT", "VARIANT_ID", "VARIANT_VERSION"} {
					fmt.Fprintf(out, "%s=%s\n", k, rel[k])
				}
				return nil
			}
			if rel["VARIANT"] == "" {
				_, err = fmt.Fprintf(out, "%s (the box sets no VARIANT)\n", rel["PRETTY_NAME"])
				return err
			}
			_, err = fmt.Fprintf(out, "%s %s\n", rel["VARIANT"], rel["VARIANT_VERSION"])
			return err
		},
	}
	cmd.Flags().BoolVar(&script, "script-readable", false, "print VARIANT, VARIANT_ID and VARIANT_VERSION lines")
	return cmd
}
