package vboxpath

import "path/filepath"

const exeName = "VBoxManage.exe"

// installDirs are where VirtualBox's Windows installer puts VBoxManage:
// under %ProgramFiles% (and the usual C:\Program Files when that variable
// is unset or points elsewhere).
func installDirs(getenv func(string) string) []string {
	var dirs []string
	if pf := getenv("ProgramFiles"); pf != "" {
		dirs = append(dirs, filepath.Join(pf, "Oracle", "VirtualBox"))
	}
	if def := `C:\Program Files\Oracle\VirtualBox`; len(dirs) == 0 || dirs[0] != def {
		dirs = append(dirs, def)
	}
	return dirs
}
