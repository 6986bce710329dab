//go:build windows

package envfmt

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// maxAncestors bounds the walk up the process tree (parent process IDs can
// be reused after a parent exits, which could otherwise form a loop).
const maxAncestors = 32

// processAncestors returns the executable names of this process's parent,
// grandparent and so on, nearest first, from a snapshot of the process list.
func processAncestors() ([]string, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer windows.CloseHandle(snap)

	type proc struct {
		parent uint32
		exe    string
	}
	procs := map[uint32]proc{}
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		procs[e.ProcessID] = proc{parent: e.ParentProcessID, exe: windows.UTF16ToString(e.ExeFile[:])}
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil, fmt.Errorf("list processes: %w", err)
	}

	var names []string
	seen := map[uint32]bool{}
	pid := uint32(os.Getpid())
	for len(names) < maxAncestors {
		seen[pid] = true
		p, ok := procs[pid]
		if !ok || p.parent == 0 || seen[p.parent] {
			break
		}
		parent, ok := procs[p.parent]
		if !ok {
			break
		}
		names = append(names, parent.exe)
		pid = p.parent
	}
	return names, nil
}
