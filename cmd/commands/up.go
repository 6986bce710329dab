package commands

import (
	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// UpOptions are the flags of `devbundle up`.
type UpOptions struct {
	Box        string
	BoxVersion string
	BoxServer  string
	Provider   string
	CPUs       int
	Memory     int
	Disk       int
	Accel      string
	Services   string
	Insecure   bool
}

// NewCmdUp creates the `up` command.
func NewCmdUp(f *cmdutil.Factory) *cobra.Command {
	opts := &UpOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create and start the machine, or start it when halted",
		Long: `Create the machine from its box (adding the box when missing), start it when
it is halted, log in over SSH (replacing the box's insecure key on the first
boot), and set up the services. On a running machine the boot is skipped.
Settings come from devbundle.yaml and the user config; flags override them.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			if flags.Changed("services") {
				if err := services.CheckExclusive(config.ParseServices(opts.Services)); err != nil {
					return err
				}
			}
			cfg, err := f.FinishedConfig(func(c *config.Config) {
				if flags.Changed("box") {
					c.Box = opts.Box
				}
				if flags.Changed("box-version") {
					c.BoxVersion = opts.BoxVersion
				}
				if env := f.Getenv("VAGRANT_SERVER_URL"); env != "" {
					c.BoxServer = env
				}
				if flags.Changed("box-server") {
					c.BoxServer = opts.BoxServer
				}
				if flags.Changed("provider") {
					c.Provider = opts.Provider
				}
				if flags.Changed("cpus") {
					c.CPUs = opts.CPUs
				}
				if flags.Changed("memory") {
					c.Memory = opts.Memory
				}
				if flags.Changed("disk") {
					c.Disk = opts.Disk
				}
				if flags.Changed("accel") {
					c.Accel = opts.Accel
				}
				if flags.Changed("services") {
					c.Services = config.ParseServices(opts.Services)
				}
			})
			if err != nil {
				return err
			}
			mgr, err := f.Manager(cfg)
			if err != nil {
				return err
			}
			// Refuse before booting what the machine cannot run beside the
			// services it already runs.
			if prev, err := mgr.Store.Load(f.Machine); err == nil {
				if err := services.CheckAgainstEnabled(prev, cfg.Services); err != nil {
					return err
				}
			}
			reg := f.Services()
			ports, err := reg.Ports(cfg.Services)
			if err != nil {
				return err
			}
			m, err := mgr.Up(cmd.Context(), vm.UpOptions{
				Name:     f.Machine,
				Provider: cfg.Provider,
				Box: vm.BoxRequest{
					Name: cfg.Box, Version: cfg.BoxVersion, Provider: cfg.Provider,
					Server: cfg.BoxServer, Insecure: opts.Insecure,
				},
				CPUs: cfg.CPUs, MemoryMiB: cfg.Memory, DiskGiB: cfg.Disk, Accel: cfg.Accel,
				Network: cfg.Libvirt.Network,
				SSHUser: "vagrant",
				Ports:   ports,
				Provision: services.Provision(services.ProvisionOptions{
					Registry: reg, Names: cfg.Services, MachineDir: mgr.Store.Dir(f.Machine),
					Proxy: cfg.ProxyURL(), IO: f.IOStreams, HostDialer: mgr.HostDialer,
				}),
			})
			if err != nil {
				return err
			}
			f.IOStreams.Infof("machine %q is running (%s)", m.Name, m.Box)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Box, "box", "", "box to create the machine from: user/name, a catalog URL, a .box URL or file (default "+config.DefaultBox+")")
	fl.StringVar(&opts.BoxVersion, "box-version", "", "version constraint for the box, such as \">= 12\"")
	fl.StringVar(&opts.BoxServer, "box-server", "", "box registry replacing the public one")
	fl.StringVar(&opts.Provider, "provider", "", "libvirt or virtualbox (default: libvirt on Linux, virtualbox elsewhere)")
	fl.IntVar(&opts.CPUs, "cpus", 0, "virtual CPUs (default 2)")
	fl.IntVar(&opts.Memory, "memory", 0, "memory in MiB (default 2048)")
	fl.IntVar(&opts.Disk, "disk", 0, "grow the disk to this many GiB (default: the box's size)")
	fl.StringVar(&opts.Accel, "accel", "", "auto, kvm or tcg (software emulation)")
	fl.StringVar(&opts.Services, "services", "", "services to enable, comma-separated: docker, kubernetes, openshift (kubernetes and openshift exclude each other)")
	fl.BoolVar(&opts.Insecure, "insecure", false, "allow a box over plain HTTP with no checksum")
	return cmd
}
