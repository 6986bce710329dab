package commands

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/vm"
)

// NewCmdDoctor creates the `doctor` command.
func NewCmdDoctor(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can run devbundle machines, and say what to fix",
		Long:  "Check the hypervisor, hardware acceleration, free disk space and VBoxManage. Exits 1 when a check fails.",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mgr, cfg, err := f.ConfiguredManager()
			if err != nil {
				return err
			}
			p, err := f.Paths()
			if err != nil {
				return err
			}
			results := vm.Doctor(cmd.Context(), vm.DoctorOptions{
				Provider: cfg.Provider, DataDir: p.Data, ConnectProvider: mgr.Provider, Getenv: f.Getenv,
			})
			out := f.IOStreams.Out
			failed := 0
			for _, r := range results {
				if r.Status == vm.CheckFail {
					failed++
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					fmt.Fprintf(out, "[%-4s] %s: %s\n", r.Status, r.Name, r.Detail)
					if r.Fix != "" && r.Status != vm.CheckOK {
						fmt.Fprintf(out, "       fix: %s\n", r.Fix)
					}
				}
			}
			if failed > 0 {
				return errors.New(fmt.Sprint(failed, " check(s) failed; see the fixes above"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
