package commands

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/boxes"
	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/download"
	"github.com/devbundle/devbundle/vm"
)

// NewCmdBox groups the box commands.
func NewCmdBox(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "box",
		Short: "Manage the Vagrant boxes devbundle boots machines from",
		Args:  cmdutil.NoArgs,
	}
	cmd.AddCommand(
		NewCmdBoxAdd(f),
		NewCmdBoxList(f),
		NewCmdBoxRemove(f),
		NewCmdBoxOutdated(f),
		NewCmdBoxPrune(f),
		NewCmdBoxVersion(f),
		NewCmdIP(f),
	)
	return cmd
}

// boxStore returns the box store and the function that tells which
// machines use a box.
func boxStore(f *cmdutil.Factory) (*boxes.Store, boxes.InUseFunc, error) {
	p, err := f.Paths()
	if err != nil {
		return nil, nil, err
	}
	machines := vm.Store{Root: p.Machines()}
	inUse := func(b boxes.Box) ([]string, error) {
		return machines.UsesBox(b.Name, b.Version, b.Provider)
	}
	return boxes.NewStore(p.Boxes()), inUse, nil
}

// BoxAddOptions are the flags of `box add`.
type BoxAddOptions struct {
	Version      string
	Provider     string
	Architecture string
	Checksum     string
	Insecure     bool
	Force        bool
	Name         string
	Server       string
}

// NewCmdBoxAdd creates `box add`.
func NewCmdBoxAdd(f *cmdutil.Factory) *cobra.Command {
	opts := &BoxAddOptions{}
	cmd := &cobra.Command{
		Use:   "add SOURCE",
		Short: "Download a box into the store, verified",
		Long: `Add a box. SOURCE is a registry name (user/name), a catalog metadata URL, a
direct .box URL or a local .box file. From a catalog the newest version that
satisfies --box-version is chosen, for the provider and this host's
architecture. The download is checked against the catalog's checksum (or
--checksum) and unpacked while it arrives; an interrupted add resumes where
it stopped. A file with no checksum is fetched only over HTTPS; plain HTTP
with no checksum needs --insecure.`,
		Args: cmdutil.ExactArgs(1, "one box source"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, err := boxStore(f)
			if err != nil {
				return err
			}
			p, err := f.Paths()
			if err != nil {
				return err
			}
			cfg, _, err := f.Config()
			if err != nil {
				return err
			}
			add := f.BoxAddDefaults(p)
			add.Source, add.Version, add.Provider, add.Architecture = args[0], opts.Version, opts.Provider, opts.Architecture
			add.Insecure, add.Force, add.Name = opts.Insecure, opts.Force, opts.Name
			if add.Server == "" {
				add.Server = cfg.BoxServer
			}
			if opts.Server != "" {
				add.Server = opts.Server
			}
			if opts.Checksum != "" {
				sum, err := download.ParseChecksum(opts.Checksum)
				if err != nil {
					return err
				}
				add.Checksum = sum
			}
			b, err := store.Add(cmd.Context(), add)
			if err != nil {
				return err
			}
			f.IOStreams.Infof("added box %s", b)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Version, "box-version", "", "version constraint, such as \">= 1.2, < 2\"")
	fl.StringVar(&opts.Provider, "provider", "", "libvirt or virtualbox")
	fl.StringVar(&opts.Architecture, "architecture", "", "amd64, arm64, ... (default: this host's)")
	fl.StringVar(&opts.Checksum, "checksum", "", "expected checksum as TYPE:HEX (md5, sha1, sha256, sha384, sha512)")
	fl.BoolVar(&opts.Insecure, "insecure", false, "allow plain HTTP with no checksum")
	fl.BoolVar(&opts.Force, "force", false, "replace the box when it is already in the store")
	fl.StringVar(&opts.Name, "name", "", "name for a box from a .box URL or file (default: the file's base name)")
	fl.StringVar(&opts.Server, "box-server", "", "box registry replacing the public one (also VAGRANT_SERVER_URL)")
	return cmd
}

// NewCmdBoxList creates `box list`.
func NewCmdBoxList(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the boxes in the store",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, err := boxStore(f)
			if err != nil {
				return err
			}
			list, err := store.List()
			if err != nil {
				return err
			}
			out := f.IOStreams.Out
			if asJSON {
				if list == nil {
					list = []boxes.Box{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				f.IOStreams.Infof("no boxes; add one with \"devbundle box add user/name\"")
				return nil
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVERSION\tPROVIDER\tARCHITECTURE")
			for _, b := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.Name, b.Version, b.Provider, b.Architecture)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// NewCmdBoxRemove creates `box remove`.
func NewCmdBoxRemove(f *cmdutil.Factory) *cobra.Command {
	opts := boxes.RemoveOptions{}
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a box from the store",
		Long:  "Remove a box. A box that a machine uses is kept unless --force is given.",
		Args:  cmdutil.ExactArgs(1, "one box name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, inUse, err := boxStore(f)
			if err != nil {
				return err
			}
			opts.Name, opts.InUse = args[0], inUse
			opts.Warn = func(msg string) { f.IOStreams.Warnf("%s", msg) }
			removed, err := store.Remove(cmd.Context(), opts)
			if err != nil {
				return err
			}
			for _, b := range removed {
				f.IOStreams.Infof("removed box %s", b)
			}
			forgetBoxes(cmd, f, removed)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Version, "box-version", "", "remove only this version")
	fl.StringVar(&opts.Provider, "provider", "", "remove only this provider's box")
	fl.StringVar(&opts.Architecture, "architecture", "", "remove only this architecture's box")
	fl.BoolVar(&opts.All, "all", false, "remove every version that matches")
	fl.BoolVarP(&opts.Force, "force", "f", false, "remove even when a machine uses it")
	return cmd
}

// NewCmdBoxOutdated creates `box outdated`.
func NewCmdBoxOutdated(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "outdated [NAME]",
		Short: "Ask the catalogs whether newer versions of the stored boxes exist",
		Args:  cmdutil.MaxArgs(1, "at most one box name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, err := boxStore(f)
			if err != nil {
				return err
			}
			opts := boxes.OutdatedOptions{Client: f.HTTPClient(), Warn: func(msg string) { f.IOStreams.Warnf("%s", msg) }}
			if len(args) == 1 {
				opts.Name = args[0]
			}
			reports, err := store.Outdated(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := f.IOStreams.Out
			for _, r := range reports {
				switch {
				case r.Err != nil:
					fmt.Fprintf(out, "%s %s (%s): unknown: %v\n", r.Box.Name, r.Box.Version, r.Box.Provider, r.Err)
				case r.Outdated:
					fmt.Fprintf(out, "%s %s (%s): outdated, %s is available; run \"devbundle box add %s\"\n", r.Box.Name, r.Box.Version, r.Box.Provider, r.Latest, r.Box.Name)
				default:
					fmt.Fprintf(out, "%s %s (%s): up to date\n", r.Box.Name, r.Box.Version, r.Box.Provider)
				}
			}
			return nil
		},
	}
}

// NewCmdBoxPrune creates `box prune`.
func NewCmdBoxPrune(f *cmdutil.Factory) *cobra.Command {
	opts := boxes.PruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune [NAME]",
		Short: "Remove old box versions, keeping the newest of each and any a machine uses",
		Args:  cmdutil.MaxArgs(1, "at most one box name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, inUse, err := boxStore(f)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				opts.Name = args[0]
			}
			opts.InUse = inUse
			opts.Warn = func(msg string) { f.IOStreams.Warnf("%s", msg) }
			removed, err := store.Prune(cmd.Context(), opts)
			if err != nil {
				return err
			}
			verb := "removed"
			if opts.DryRun {
				verb = "would remove"
			} else {
				forgetBoxes(cmd, f, removed)
			}
			for _, b := range removed {
				fmt.Fprintf(f.IOStreams.Out, "%s %s\n", verb, b)
			}
			if len(removed) == 0 {
				f.IOStreams.Infof("nothing to prune")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "only say what would be removed")
	return cmd
}

// forgetBoxes removes the hypervisor's uploaded copies of removed boxes.
func forgetBoxes(cmd *cobra.Command, f *cmdutil.Factory, removed []boxes.Box) {
	if len(removed) == 0 {
		return
	}
	mgr, _, err := f.ConfiguredManager()
	if err != nil {
		f.IOStreams.Debugf("not removing uploaded box images: %v", err)
		return
	}
	mgr.ForgetBoxes(cmd.Context(), removed, func(msg string) { f.IOStreams.Warnf("%s", msg) })
}
