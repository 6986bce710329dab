// Package paths decides where devbundle keeps its files.
//
// By default the per-user XDG folders are used (through github.com/adrg/xdg,
// which maps them to the native places on macOS and Windows). DEVBUNDLE_HOME
// puts everything under one folder instead; tests always set it.
package paths

import (
	"errors"
	"path/filepath"

	"github.com/adrg/xdg"
)

// Paths are the folders devbundle writes to.
type Paths struct {
	Data   string // boxes and machines: what must survive
	Cache  string // downloads and client binaries: what can be fetched again
	Config string // the user-level config file
}

// New returns the paths for this user. getenv is consulted for
// DEVBUNDLE_HOME.
func New(getenv func(string) string) (Paths, error) {
	if home := getenv("DEVBUNDLE_HOME"); home != "" {
		abs, err := filepath.Abs(home)
		if err != nil {
			return Paths{}, err
		}
		return Paths{
			Data:   filepath.Join(abs, "data"),
			Cache:  filepath.Join(abs, "cache"),
			Config: filepath.Join(abs, "config"),
		}, nil
	}
	if xdg.DataHome == "" || xdg.CacheHome == "" || xdg.ConfigHome == "" {
		return Paths{}, errors.New("cannot find the per-user data folders; set DEVBUNDLE_HOME to a folder devbundle may use")
	}
	return Paths{
		Data:   filepath.Join(xdg.DataHome, "devbundle"),
		Cache:  filepath.Join(xdg.CacheHome, "devbundle"),
		Config: filepath.Join(xdg.ConfigHome, "devbundle"),
	}, nil
}

// Boxes is the box store.
func (p Paths) Boxes() string { return filepath.Join(p.Data, "boxes") }

// Machines holds one folder per machine.
func (p Paths) Machines() string { return filepath.Join(p.Data, "machines") }

// Machine is the folder of one machine.
func (p Paths) Machine(name string) string { return filepath.Join(p.Machines(), name) }

// Downloads holds partial downloads, so an interrupted one can resume.
func (p Paths) Downloads() string { return filepath.Join(p.Cache, "downloads") }

// Bin holds client binaries fetched by install-cli.
func (p Paths) Bin() string { return filepath.Join(p.Cache, "bin") }

// UserConfig is the user-level config file.
func (p Paths) UserConfig() string { return filepath.Join(p.Config, "config.yaml") }
