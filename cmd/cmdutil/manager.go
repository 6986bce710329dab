package cmdutil

import (
	"context"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/boxes"
	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/insecurekey"
	"github.com/devbundle/devbundle/internal/paths"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/libvirt"
	"github.com/devbundle/devbundle/vm/virtualbox"
)

// FinishedConfig loads the config, lets apply set flag values, then fills
// defaults and validates. Invalid settings are usage errors listing every
// problem.
func (f *Factory) FinishedConfig(apply func(*config.Config)) (*config.Config, error) {
	cfg, src, err := f.Config()
	if err != nil {
		return nil, err
	}
	if apply != nil {
		apply(cfg)
	}
	if err := cfg.Finish(); err != nil {
		where := "flags"
		if src.Project != "" {
			where = src.Project + " and flags"
		} else if src.User != "" {
			where = src.User + " and flags"
		}
		return nil, dberr.Usage("invalid settings (from %s):\n%w", where, err)
	}
	return cfg, nil
}

// Manager returns the machine manager configured from cfg.
func (f *Factory) Manager(cfg *config.Config) (*vm.Manager, error) {
	p, err := f.Paths()
	if err != nil {
		return nil, err
	}
	return &vm.Manager{
		Store:  vm.Store{Root: p.Machines()},
		IO:     f.IOStreams,
		Getenv: f.Getenv,
		Provider: func(ctx context.Context, name string) (vm.Provider, error) {
			switch name {
			case config.ProviderLibvirt:
				return libvirt.New(ctx, libvirt.Options{
					URI:         cfg.Libvirt.URI,
					CacheDir:    p.Cache,
					Network:     cfg.Libvirt.Network,
					NetworkName: cfg.Libvirt.NetworkName,
					Getenv:      f.Getenv,
				})
			case config.ProviderVirtualBox:
				return virtualbox.New(ctx, virtualbox.Options{
					CacheDir:    p.Cache,
					MachinesDir: p.Machines(),
					Getenv:      f.Getenv,
					HostOnly: virtualbox.HostOnly{
						Adapter: cfg.VirtualBox.HostOnlyAdapter,
						Network: cfg.VirtualBox.HostOnlyNetwork,
					},
				})
			default:
				return nil, dberr.Usage("unknown provider %q; use libvirt or virtualbox", name)
			}
		},
		Boxes: &vm.StoreBoxes{Store: boxes.NewStore(p.Boxes()), Add: f.BoxAddDefaults(p)},
		InsecureKeys: func(ctx context.Context) ([]ssh.Signer, error) {
			keys, err := insecurekey.Load(ctx, insecurekey.Options{
				File:       cfg.SSH.InsecureKeyFile,
				Getenv:     f.Getenv,
				HTTPClient: f.HTTPClient(),
			})
			if err != nil {
				return nil, err
			}
			return keys.Signers, nil
		},
	}, nil
}

// BoxAddDefaults are the options every box download shares: the HTTP
// client, a progress bar on a terminal, warnings on stderr, and the
// download folder where partial files wait to be resumed.
func (f *Factory) BoxAddDefaults(p paths.Paths) boxes.AddOptions {
	return boxes.AddOptions{
		Client:      f.HTTPClient(),
		DownloadDir: p.Downloads(),
		Progress:    f.IOStreams.NewProgress("downloading box"),
		Warn:        func(msg string) { f.IOStreams.Warnf("%s", msg) },
		Server:      f.Getenv("VAGRANT_SERVER_URL"),
	}
}

// ConfiguredManager loads the config with no flag overrides and returns the
// machine manager built from it.
func (f *Factory) ConfiguredManager() (*vm.Manager, *config.Config, error) {
	cfg, err := f.FinishedConfig(nil)
	if err != nil {
		return nil, nil, err
	}
	mgr, err := f.Manager(cfg)
	if err != nil {
		return nil, nil, err
	}
	return mgr, cfg, nil
}
