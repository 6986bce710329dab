package commands

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/services"
)

// NewCmdService groups the service commands.
func NewCmdService(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Start, stop, restart or show the services in the machine",
		Args:  cmdutil.NoArgs,
	}
	cmd.AddCommand(newCmdServiceStatus(f))
	for _, action := range []string{services.ActionStart, services.ActionStop, services.ActionRestart} {
		cmd.AddCommand(newCmdServiceControl(f, action))
	}
	return cmd
}

// serviceTarget logs in to the running machine.
func serviceTarget(cmd *cobra.Command, f *cmdutil.Factory) (services.Target, func(), error) {
	mgr, _, err := f.ConfiguredManager()
	if err != nil {
		return services.Target{}, nil, err
	}
	client, m, err := mgr.Connect(cmd.Context(), f.Machine)
	if err != nil {
		return services.Target{}, nil, err
	}
	return services.Target{Registry: f.Services(), Guest: client, Machine: m, MachineDir: mgr.Store.Dir(m.Name)},
		func() { _ = client.Close() }, nil
}

func newCmdServiceStatus(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show whether each service runs: \"docker - running\"",
		Args:  cmdutil.MaxArgs(1, "at most one service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, done, err := serviceTarget(cmd, f)
			if err != nil {
				return err
			}
			defer done()
			list, err := services.StatusOf(cmd.Context(), t, args)
			if err != nil {
				return err
			}
			out := f.IOStreams.Out
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			for _, s := range list {
				fmt.Fprintf(out, "%s - %s\n", s.Name, s.Status)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newCmdServiceControl(f *cmdutil.Factory, action string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " SERVICE",
		Short: action + " a service in the machine",
		Args:  cmdutil.ExactArgs(1, "one service (docker, kubernetes or openshift)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, done, err := serviceTarget(cmd, f)
			if err != nil {
				return err
			}
			defer done()
			if err := services.Control(cmd.Context(), t, args[0], action); err != nil {
				return err
			}
			f.IOStreams.Infof("%s: %s done", args[0], action)
			return nil
		},
	}
}
