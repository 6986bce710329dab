// Command devbundle boots a local VM from a Vagrant box and points the
// user's docker, kubectl and oc at the services inside it.
package main

import (
	"os"

	"github.com/devbundle/devbundle/cmd/commands"
	"github.com/devbundle/devbundle/internal/iostreams"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() { os.Exit(run()) }

func run() int {
	return commands.Main(os.Args[1:], iostreams.System(os.Getenv), version)
}
