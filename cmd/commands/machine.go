package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// NewCmdStatus creates the `status` command.
func NewCmdStatus(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the machine's state, box, address and forwarded ports",
		Long:  "Show the machine's state. It exits 0 whatever the state: not created, halted or running.",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mgr, _, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			st, err := mgr.Status(cmd.Context(), f.Machine)
			if err != nil {
				return err
			}
			out := f.IOStreams.Out
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "machine:\t%s\n", st.Name)
			fmt.Fprintf(w, "state:\t%s\n", st.State)
			if st.Provider != "" {
				fmt.Fprintf(w, "provider:\t%s\n", st.Provider)
			}
			if st.Box != nil {
				fmt.Fprintf(w, "box:\t%s %s\n", st.Box.Name, st.Box.Version)
			}
			if st.Address != "" {
				fmt.Fprintf(w, "address:\t%s\n", st.Address)
			}
			if st.Host != "" {
				fmt.Fprintf(w, "libvirt host:\t%s (forwards on its 127.0.0.1: run \"devbundle tunnel\")\n", st.Host)
			}
			for _, fw := range st.Forwards {
				fmt.Fprintf(w, "forward:\t%s:%d -> %d (%s)\n", fw.HostIP, fw.HostPort, fw.GuestPort, fw.Name)
			}
			if st.Problem != "" {
				fmt.Fprintf(w, "note:\t%s\n", st.Problem)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// NewCmdHalt creates the `halt` command.
func NewCmdHalt(f *cmdutil.Factory) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "halt",
		Short: "Shut the machine down (ACPI, then power off after a deadline)",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mgr, _, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			return mgr.Halt(cmd.Context(), f.Machine, vm.HaltOptions{Force: force})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "power off at once")
	return cmd
}

// NewCmdDestroy creates the `destroy` command.
func NewCmdDestroy(f *cmdutil.Factory) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove the machine: its VM, disks and state",
		Long: `Remove the machine's VM, its disks and everything devbundle keeps for it.
The box stays. On a terminal it asks first; without a terminal it needs --force.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				if !f.IOStreams.CanPrompt() {
					return dberr.Usage("destroy needs confirmation; pass --force when no terminal is attached")
				}
				ok, err := f.IOStreams.Confirm(fmt.Sprintf("Destroy machine %q and its disks?", f.Machine))
				if err != nil {
					return err
				}
				if !ok {
					f.IOStreams.Infof("nothing destroyed")
					return nil
				}
			}
			mgr, _, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			return mgr.Destroy(cmd.Context(), f.Machine)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask")
	return cmd
}

// NewCmdSSH creates the `ssh` command.
func NewCmdSSH(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "ssh [-- COMMAND...]",
		Short: "Log in to the machine, or run a command in it",
		Long: `Without a command, open an interactive shell in the machine. With one, run it
and exit with its exit code:

  devbundle ssh -- uname -a`,
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
			io := f.IOStreams
			var code int
			if len(args) > 0 && !io.IsStdinTTY() {
				code, err = client.Run(cmd.Context(), strings.Join(args, " "), sshc.RunOptions{Stdin: io.In, Stdout: io.Out, Stderr: io.ErrOut})
			} else {
				code, err = client.Shell(cmd.Context(), sshc.ShellOptions{
					Stdin: io.In, Stdout: io.Out, Stderr: io.ErrOut,
					Command: strings.Join(args, " "), Term: f.Getenv("TERM"),
				})
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return &cmdutil.ExitCodeError{Code: code}
			}
			return nil
		},
	}
}

// NewCmdSSHConfig creates the `ssh-config` command.
func NewCmdSSHConfig(f *cmdutil.Factory) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print an OpenSSH Host stanza for the machine",
		Long: `Print an OpenSSH configuration stanza, so plain ssh, scp and rsync reach the
machine with its own key and pinned host key:

  devbundle ssh-config >> ~/.ssh/config && ssh devbundle-default`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.Paths()
			if err != nil {
				return err
			}
			store := vm.Store{Root: p.Machines()}
			m, err := store.LoadReachable(f.Machine)
			if err != nil {
				return err
			}
			hostName, port, err := m.SSHEndpoint()
			if err != nil {
				return dberr.NotRunning(f.Machine)
			}
			if host == "" {
				host = "devbundle-" + m.Name
			}
			stanza, err := sshc.ConfigStanza(sshc.StanzaOptions{
				Host: host, HostName: hostName, Port: port, User: m.SSH.User,
				IdentityFile:   store.Dir(m.Name) + string(os.PathSeparator) + vm.KeyFile,
				KnownHostsFile: store.Dir(m.Name) + string(os.PathSeparator) + vm.KnownHostsFile,
				HostKeyAlias:   sshc.HostKeyAlias(m.Name),
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(f.IOStreams.Out, stanza)
			return err
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "the Host name in the stanza (default devbundle-<machine>)")
	return cmd
}

// NewCmdTunnel creates the `tunnel` command.
func NewCmdTunnel(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "tunnel",
		Short: "Carry a remote machine's forwarded ports to this host",
		Long: `For a machine on a remote libvirt host (libvirt uri qemu+ssh://user@host/system),
whose forwarded ports bind that host's 127.0.0.1: listen on this host's
127.0.0.1 at the same ports and carry every connection over one SSH
connection to the remote host, until interrupted. Keep it running in another
terminal while docker, kubectl or oc use the "devbundle env" output.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mgr, _, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			io := f.IOStreams
			return mgr.Tunnel(cmd.Context(), vm.TunnelOptions{
				Name: f.Machine,
				Ready: func(hop string, forwards []vm.Forward) {
					for _, fw := range forwards {
						io.Infof("forwarding 127.0.0.1:%d to %s's 127.0.0.1:%d (%s)", fw.HostPort, hop, fw.HostPort, fw.Name)
					}
					io.Infof("press Ctrl-C to stop")
				},
				Log: io.Warnf,
			})
		},
	}
}
