//go:build !windows && !darwin

package vboxpath

const exeName = "VBoxManage"

// installDirs is empty on Linux and the BSDs: their packages put
// VBoxManage on PATH (/usr/bin).
func installDirs(func(string) string) []string { return nil }
