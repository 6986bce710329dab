package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/filelock"
)

// Files in a machine's folder.
const (
	StateFile      = "state.json"
	LockFile       = "lock"
	KeyFile        = "id_ed25519"
	KnownHostsFile = "known_hosts"
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// ValidateName checks a machine name: it becomes a folder and part of the
// VM's name on the hypervisor.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("machine name %q is not valid; use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63)", name)
	}
	return nil
}

// Store keeps one folder per machine under Root.
type Store struct {
	Root string
}

// Dir is the folder of machine name.
func (s Store) Dir(name string) string { return filepath.Join(s.Root, name) }

// Ensure creates the machine's folder (0700) and returns it.
func (s Store) Ensure(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	dir := s.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create machine folder: %w", err)
	}
	return dir, nil
}

// Lock takes the machine's lock, waiting until ctx ends. Every command that
// changes a machine holds it, so two commands on one machine serialise.
func (s Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	dir, err := s.Ensure(name)
	if err != nil {
		return nil, err
	}
	u, err := filelock.Lock(ctx, filepath.Join(dir, LockFile))
	if err != nil {
		return nil, fmt.Errorf("lock machine %q: %w", name, err)
	}
	return func() { _ = u() }, nil
}

// TryLock takes the machine's lock if it is free.
func (s Store) TryLock(name string) (unlock func(), ok bool, err error) {
	dir, err := s.Ensure(name)
	if err != nil {
		return nil, false, err
	}
	u, ok, err := filelock.TryLock(filepath.Join(dir, LockFile))
	if err != nil || !ok {
		return nil, ok, err
	}
	return func() { _ = u() }, true, nil
}

// Load reads the machine's state. A machine never created gives an error
// wrapping fs.ErrNotExist.
func (s Store) Load(name string) (*Machine, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(name), StateFile))
	if err != nil {
		return nil, fmt.Errorf("machine %q: %w", name, err)
	}
	var m Machine
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("machine %q: state file %q is damaged (%w); run \"devbundle destroy -m %s --force\" to start over", name, filepath.Join(s.Dir(name), StateFile), err, name)
	}
	return &m, nil
}

// Exists reports whether the machine has saved state.
func (s Store) Exists(name string) bool {
	_, err := os.Stat(filepath.Join(s.Dir(name), StateFile))
	return err == nil
}

// Save writes the machine's state atomically.
func (s Store) Save(m *Machine) error {
	dir, err := s.Ensure(m.Name)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, StateFile), append(data, '\n'), 0o600)
}

// Remove deletes the machine's folder and everything in it.
func (s Store) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := os.RemoveAll(s.Dir(name)); err != nil {
		return fmt.Errorf("remove machine folder: %w", err)
	}
	return nil
}

// List returns every machine with saved state, by name.
func (s Store) List() ([]*Machine, error) {
	entries, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Machine
	for _, e := range entries {
		if !e.IsDir() || !s.Exists(e.Name()) {
			continue
		}
		m, err := s.Load(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// UsesBox reports whether any machine was made from the box.
func (s Store) UsesBox(name, version, provider string) ([]string, error) {
	machines, err := s.List()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, m := range machines {
		if m.Box.Name == name && (version == "" || m.Box.Version == version) && (provider == "" || m.Box.Provider == provider) {
			users = append(users, m.Name)
		}
	}
	return users, nil
}

// LoadReachable reads the state of a machine the commands that act on a
// running machine can use: one that exists and whose first `up` replaced
// the box's key. Otherwise the error is the standard "not running" one
// (exit 3). It reads local state only; whether the VM still runs is for
// the caller to find out.
func (s Store) LoadReachable(name string) (*Machine, error) {
	m, err := s.Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notCreated(name)
	}
	if err != nil {
		return nil, err
	}
	if !m.Reachable() {
		return nil, dberr.NotRunning(name)
	}
	return m, nil
}

// notCreated is the error for a machine with no state: exit 3, with the
// command that creates it.
func notCreated(name string) error {
	return dberr.WithHint(dberr.NotRunning(name), fmt.Sprintf("machine %q has not been created; run \"devbundle up -m %s\"", name, name))
}
