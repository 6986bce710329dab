package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// doctor reports the VBoxManage it finds with the version it prints, and
// what to install when there is none.
func TestDoctorVBoxManage(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("writes a shell script as VBoxManage")
	}
	dir := t.TempDir()
	tool := filepath.Join(dir, "VBoxManage")
	write := func(script string) {
		t.Helper()
		if err := os.WriteFile(tool, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"VBOX_INSTALL_PATH": dir}
	opts := DoctorOptions{Provider: "virtualbox", Getenv: func(k string) string { return env[k] }}

	write("[ \"$1\" = --version ] && echo 7.0.14r161095\n")
	r := checkVBoxManage(context.Background(), opts)
	if r.Status != CheckOK || r.Detail != tool+" (VirtualBox 7.0.14r161095)" {
		t.Errorf("working VBoxManage: %+v", r)
	}

	write("echo 'WARNING: The vboxdrv kernel module is not loaded.'\necho 7.0.14r161095\n")
	if r := checkVBoxManage(context.Background(), opts); r.Status != CheckWarn || !strings.Contains(r.Detail, "vboxdrv") || r.Fix == "" {
		t.Errorf("VBoxManage with a warning: %+v", r)
	}

	write("echo 6.0.24r139119\n")
	if r := checkVBoxManage(context.Background(), opts); r.Status != CheckFail || !strings.Contains(r.Fix, "6.1 or newer") {
		t.Errorf("old VBoxManage: %+v", r)
	}

	write("echo 'VBoxManage: error: broken install' >&2\nexit 1\n")
	if r := checkVBoxManage(context.Background(), opts); r.Status != CheckFail || !strings.Contains(r.Detail, "broken install") {
		t.Errorf("broken VBoxManage: %+v", r)
	}

	if _, err := exec.LookPath("VBoxManage"); err == nil {
		t.Skip("VBoxManage is on PATH here: cannot check the not-found report")
	}
	env["VBOX_INSTALL_PATH"] = t.TempDir()
	r = checkVBoxManage(context.Background(), opts)
	if r.Status != CheckFail || r.Detail != "not found" || !strings.Contains(r.Fix, "install VirtualBox 7") || !strings.Contains(r.Fix, "VBOX_INSTALL_PATH") {
		t.Errorf("no VBoxManage, virtualbox provider: %+v", r)
	}
	opts.Provider = "libvirt"
	if r := checkVBoxManage(context.Background(), opts); r.Status != CheckWarn {
		t.Errorf("no VBoxManage, libvirt provider: %+v", r)
	}
}
