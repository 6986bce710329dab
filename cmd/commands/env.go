package commands

import (
	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// EnvOptions are the flags of `devbundle env`.
type EnvOptions struct {
	Shell          string
	Unset          bool
	NoProxy        bool
	ScriptReadable bool
	JSON           bool
}

// NewCmdEnv creates the `env` command.
func NewCmdEnv(f *cmdutil.Factory) *cobra.Command {
	opts := &EnvOptions{}
	cmd := &cobra.Command{
		Use:   "env [docker|kubernetes|openshift]",
		Short: "Print the shell commands that point docker, kubectl or oc at the machine",
		Long: `Print the environment variables that point your own docker, kubectl or oc at
the services in the machine, as commands for your shell. Without a service,
every running service is printed. Apply it with:

  bash, zsh, sh:  eval "$(devbundle env docker)"
  fish:           devbundle env docker | source
  tcsh:           eval "` + "`devbundle env docker`" + `"
  PowerShell:     & devbundle env docker --shell powershell | Invoke-Expression
  cmd:            @FOR /f "tokens=*" %i IN ('devbundle env docker --shell cmd') DO @%i

The shell is detected ($SHELL on Unix, the parent processes on Windows) when
--shell is not given. Only the commands go to stdout; hints and errors go to
stderr, so the output is always safe to evaluate.`,
		ValidArgs: []string{"docker", "kubernetes", "openshift"},
		Args:      cmdutil.MaxArgs(1, "at most one service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Unset && (opts.ScriptReadable || opts.JSON) {
				return dberr.Usage("--unset cannot be combined with --script-readable or --json")
			}
			shell := envfmt.Detect(envfmt.DetectOptions{Getenv: f.Getenv})
			if opts.Shell != "" {
				s, err := envfmt.ParseShell(opts.Shell)
				if err != nil {
					return dberr.Usage("%s", err)
				}
				shell = s
			}
			p, err := f.Paths()
			if err != nil {
				return err
			}
			store := vm.Store{Root: p.Machines()}
			m, err := store.LoadReachable(f.Machine)
			if err != nil {
				return err
			}
			blocks, err := services.Env(cmd.Context(), services.EnvOptions{
				Registry: f.Services(), Machine: m, MachineDir: store.Dir(m.Name),
				Names: args, NoProxy: opts.NoProxy, Getenv: f.Getenv,
			})
			if err != nil {
				return err
			}
			doc := envfmt.Document{Blocks: blocks, ApplyCommand: applyCommand(f, args, shell, opts)}
			if opts.JSON {
				return envfmt.RenderJSON(f.IOStreams.Out, doc)
			}
			return envfmt.Render(f.IOStreams.Out, shell, doc, envfmt.RenderOptions{Unset: opts.Unset, ScriptReadable: opts.ScriptReadable})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Shell, "shell", "", "bash, zsh, sh, fish, tcsh, powershell or cmd (default: detected)")
	fl.BoolVarP(&opts.Unset, "unset", "u", false, "print commands that remove the variables")
	fl.BoolVar(&opts.NoProxy, "no-proxy", false, "add the machine's address to NO_PROXY and no_proxy")
	fl.BoolVar(&opts.ScriptReadable, "script-readable", false, "print KEY=value lines only")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// applyCommand is the command line the closing hint repeats.
func applyCommand(f *cmdutil.Factory, args []string, shell envfmt.Shell, opts *EnvOptions) []string {
	cmd := []string{"devbundle"}
	if f.Machine != "default" {
		cmd = append(cmd, "-m", f.Machine)
	}
	cmd = append(cmd, "env")
	cmd = append(cmd, args...)
	if opts.Shell != "" || shell == envfmt.PowerShell || shell == envfmt.Cmd {
		cmd = append(cmd, "--shell", string(shell))
	}
	if opts.Unset {
		cmd = append(cmd, "--unset")
	}
	if opts.NoProxy {
		cmd = append(cmd, "--no-proxy")
	}
	return cmd
}
