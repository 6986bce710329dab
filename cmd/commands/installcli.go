package commands

import (
	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/clibins"
	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// InstallCLIOptions are the flags of `devbundle install-cli`.
type InstallCLIOptions struct {
	Version  string
	Path     string
	Shell    string
	Insecure bool
}

// NewCmdInstallCLI creates the `install-cli` command.
func NewCmdInstallCLI(f *cmdutil.Factory) *cobra.Command {
	opts := &InstallCLIOptions{}
	cmd := &cobra.Command{
		Use:   "install-cli docker|kubernetes|openshift",
		Short: "Install the docker, kubectl or oc client matching the machine's server",
		Long: `Install the client that matches a service's server in the machine: docker for
docker, kubectl for kubernetes, oc for openshift. The version is asked of the
running server (docker's /version without a distribution suffix such as
+dfsg1), or given with --cli-version, which needs no machine at all.

The client comes from the cache (<cache>/bin/<client>/<version>/<os>-<arch>/)
when it holds that version, with no network access; else from your PATH when
the client found there is that version; else it is downloaded from the
official source and verified before it is cached:

  docker   download.docker.com static archives (no checksum is published:
           HTTPS only, with a warning, unless a pinned digest is known)
  kubectl  dl.k8s.io, checked against its .sha256 file
  oc       mirror.openshift.com (4.x, sha256sum.txt) or the origin
           releases on github.com (3.x, CHECKSUM)

A mirror with the same layout replaces the official host: mirrors.docker,
mirrors.kubectl, mirrors.oc in the config, or DEVBUNDLE_MIRROR_DOCKER,
DEVBUNDLE_MIRROR_KUBECTL, DEVBUNDLE_MIRROR_OC (these win). The proxy from the
config or the environment is used.

The output says where the binary is and puts its folder first on PATH, as
commands for your shell; apply it with:

  bash, zsh, sh:  eval "$(devbundle install-cli docker)"
  fish:           devbundle install-cli docker | source
  PowerShell:     & devbundle install-cli docker --shell powershell | Invoke-Expression

Progress and notes go to stderr. Exit codes: 3 when the machine is not
running (without --cli-version); 126 when the service does not answer, the
version does not exist at the source, or the --path folder is missing.`,
		ValidArgs: []string{"docker", "kubernetes", "openshift"},
		Args:      cmdutil.ExactArgs(1, "one service: docker, kubernetes or openshift"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return installCLIRun(cmd, f, args[0], opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Version, "cli-version", "", "install this client version instead of the server's (no machine needed)")
	fl.StringVar(&opts.Path, "path", "", "also copy the binary into this existing folder and put that on PATH")
	fl.StringVar(&opts.Shell, "shell", "", "bash, zsh, sh, fish, tcsh, powershell or cmd (default: detected)")
	fl.BoolVar(&opts.Insecure, "insecure", false, "allow a plain-HTTP mirror for a download that has no checksum (docker)")
	return cmd
}

func installCLIRun(cmd *cobra.Command, f *cmdutil.Factory, service string, opts *InstallCLIOptions) error {
	ctx := cmd.Context()
	shell := envfmt.Detect(envfmt.DetectOptions{Getenv: f.Getenv})
	if opts.Shell != "" {
		s, err := envfmt.ParseShell(opts.Shell)
		if err != nil {
			return dberr.Usage("%s", err)
		}
		shell = s
	}
	client, err := clibins.ForService(service)
	if err != nil {
		return err
	}
	p, err := f.Paths()
	if err != nil {
		return err
	}
	version := opts.Version
	if version != "" {
		if _, err := clibins.Canonical(version); err != nil {
			return dberr.Usage("--cli-version: %s", err)
		}
	} else {
		store := vm.Store{Root: p.Machines()}
		m, err := store.LoadReachable(f.Machine)
		if err != nil {
			return dberr.WithHint(err, "run \"devbundle up\" first, or pass --cli-version VERSION to install a client without a machine")
		}
		version, err = services.ServerVersion(ctx, f.Services(), m, store.Dir(m.Name), service)
		if err != nil {
			return err
		}
	}
	cfg, err := f.FinishedConfig(nil)
	if err != nil {
		return err
	}
	mirror, err := clibins.Mirror(client, f.Getenv, cfg.Mirrors)
	if err != nil {
		return err
	}
	streams := f.IOStreams
	res, err := clibins.Install(ctx, clibins.InstallOptions{
		Client:      client,
		Version:     version,
		BinDir:      p.Bin(),
		DownloadDir: p.Downloads(),
		Mirror:      mirror,
		Dest:        opts.Path,
		SearchPath:  f.Getenv("PATH"),
		HTTPClient:  f.HTTPClient(),
		Insecure:    opts.Insecure,
		Progress:    streams.NewProgress("downloading " + client.Name),
		Log:         streams.Infof,
		Warn:        func(msg string) { streams.Warnf("%s", msg) },
	})
	if err != nil {
		return err
	}
	doc := res.Document(clibins.DocumentOptions{
		PATH:         f.Getenv("PATH"),
		ApplyCommand: installCLIApplyCommand(f, service, shell, opts),
	})
	return envfmt.Render(streams.Out, shell, doc, envfmt.RenderOptions{})
}

// installCLIApplyCommand is the command line the closing hint repeats.
func installCLIApplyCommand(f *cmdutil.Factory, service string, shell envfmt.Shell, opts *InstallCLIOptions) []string {
	cmd := []string{"devbundle"}
	if f.Machine != "default" {
		cmd = append(cmd, "-m", f.Machine)
	}
	cmd = append(cmd, "install-cli", service)
	if opts.Version != "" {
		cmd = append(cmd, "--cli-version", opts.Version)
	}
	if opts.Path != "" {
		cmd = append(cmd, "--path", opts.Path)
	}
	if opts.Shell != "" || shell == envfmt.PowerShell || shell == envfmt.Cmd {
		cmd = append(cmd, "--shell", string(shell))
	}
	if opts.Insecure {
		cmd = append(cmd, "--insecure")
	}
	return cmd
}
