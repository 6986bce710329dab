package vboxpath

const exeName = "VBoxManage"

// installDirs are where VirtualBox's macOS installer puts VBoxManage: in
// the application bundle, linked from /usr/local/bin.
func installDirs(func(string) string) []string {
	return []string{"/Applications/VirtualBox.app/Contents/MacOS", "/usr/local/bin"}
}
