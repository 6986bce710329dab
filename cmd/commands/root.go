// Package commands holds devbundle's command tree. Commands are thin: they
// parse flags, call one function of vm, services, boxes or clibins, and
// render the result.
package commands

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/iostreams"
)

// NewCmdRoot builds the whole command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	var debug bool
	root := &cobra.Command{
		Use:   "devbundle",
		Short: "Boot a local VM from a Vagrant box and point your docker, kubectl and oc at it",
		Long: `devbundle boots a virtual machine from a Vagrant box (libvirt or VirtualBox),
enables Docker, Kubernetes or OpenShift inside it, and prints the environment
your own docker, kubectl and oc need to use them:

  devbundle up
  eval "$(devbundle env docker)"
  docker ps`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			f.IOStreams.SetDebug(debug)
		},
	}
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	root.SetFlagErrorFunc(cmdutil.FlagError)
	pf := root.PersistentFlags()
	pf.StringVarP(&f.Machine, "machine", "m", "default", "name of the machine to act on")
	pf.StringVar(&f.ConfigFile, "config", "", "project config file to use instead of the nearest devbundle.yaml")
	pf.BoolVar(&debug, "debug", false, "log what devbundle does on stderr")

	root.AddCommand(
		NewCmdVersion(f),
		NewCmdCompletion(f),
		NewCmdBox(f),
		NewCmdUp(f),
		NewCmdStatus(f),
		NewCmdHalt(f),
		NewCmdDestroy(f),
		NewCmdSSH(f),
		NewCmdSSHConfig(f),
		NewCmdTunnel(f),
		NewCmdIP(f),
		NewCmdDoctor(f),
		NewCmdEnv(f),
		NewCmdService(f),
		NewCmdInstallCLI(f),
	)
	return root
}

// Main runs devbundle with args and returns the process exit code.
func Main(args []string, streams *iostreams.IOStreams, version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := cmdutil.New(streams, version)
	return Execute(ctx, f, args)
}

// Execute runs the command tree with f and reports an error the one way
// every command does: one line on stderr, a hint line when there is one,
// and the exit code from the documented table.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return dberr.ExitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.Join(dberr.ErrInterrupted, err)
		f.IOStreams.Errorf("interrupted; run the command again to continue where it stopped")
		return dberr.ExitCode(err)
	}
	var passthrough *cmdutil.ExitCodeError
	if errors.As(err, &passthrough) {
		return passthrough.Code
	}
	if isUnknownCommand(err) {
		err = dberr.Usage("%s; see \"devbundle --help\"", err)
	}
	f.IOStreams.Errorf("%s", err)
	if hint := dberr.Hint(err); hint != "" {
		f.IOStreams.Infof("hint: %s", hint)
	}
	return dberr.ExitCode(err)
}

// isUnknownCommand recognises cobra's error for an unknown command, which
// has no type of its own.
func isUnknownCommand(err error) bool {
	const prefix = "unknown command "
	msg := err.Error()
	return len(msg) > len(prefix) && msg[:len(prefix)] == prefix
}
