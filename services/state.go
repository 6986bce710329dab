package services

import (
	"encoding/json"
	"fmt"

	"github.com/devbundle/devbundle/vm"
)

// ReadState decodes what the named service recorded in m's state when it
// was enabled; ok is false when it never was.
func ReadState[T any](m *vm.Machine, name string) (st T, ok bool, err error) {
	raw, found := m.Services[name]
	if !found || len(raw) == 0 {
		return st, false, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		var zero T
		return zero, false, fmt.Errorf("machine %q: the %s service's state is unreadable: %w; run \"devbundle up -m %s --services %s\"", m.Name, name, err, m.Name, name)
	}
	return st, true, nil
}
