package vboxpath

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	root := t.TempDir()
	dir := func(name string, withTool bool) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if withTool {
			if err := os.WriteFile(filepath.Join(d, exeName), []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	empty := dir("empty", false)
	first := dir("first", true)
	second := dir("second", true)
	msi := dir("msi", true)
	install := dir("install", true)
	// A folder named like the tool is not the tool.
	trap := dir("trap", false)
	if err := os.Mkdir(filepath.Join(trap, exeName), 0o755); err != nil {
		t.Fatal(err)
	}
	list := func(dirs ...string) string { return strings.Join(dirs, string(os.PathListSeparator)) }
	onPath := filepath.Join(root, "bin", exeName)

	for _, tc := range []struct {
		name        string
		env         map[string]string
		installDirs []string
		path        bool // VBoxManage on PATH
		want        string
		wantErr     string
	}{
		{name: "VBOX_INSTALL_PATH", env: map[string]string{EnvInstallPath: first}, want: first},
		{name: "list, first hit wins", env: map[string]string{EnvInstallPath: list(empty, second, first)}, want: second},
		{name: "list with blanks", env: map[string]string{EnvInstallPath: list("", " ", first)}, want: first},
		{name: "folder named like the tool skipped", env: map[string]string{EnvInstallPath: list(trap, second)}, want: second},
		{name: "before MSI path", env: map[string]string{EnvInstallPath: first, EnvMSIInstallPath: msi}, want: first},
		{name: "MSI path", env: map[string]string{EnvInstallPath: empty, EnvMSIInstallPath: msi}, want: msi},
		{name: "install folder after env", env: map[string]string{EnvInstallPath: empty}, installDirs: []string{empty, install}, want: install, path: true},
		{name: "env before install folder", env: map[string]string{EnvMSIInstallPath: msi}, installDirs: []string{install}, want: msi},
		{name: "PATH last", env: map[string]string{EnvInstallPath: empty}, installDirs: []string{empty}, path: true, want: filepath.Dir(onPath)},
		{name: "nowhere", env: map[string]string{EnvInstallPath: empty}, installDirs: []string{empty},
			wantErr: "install VirtualBox 7 from https://www.virtualbox.org/wiki/Downloads, or set VBOX_INSTALL_PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := tc.installDirs
			if dirs == nil {
				dirs = []string{}
			}
			got, err := Find(FindOptions{
				Getenv: func(k string) string { return tc.env[k] },
				LookPath: func(name string) (string, error) {
					if name != exeName {
						t.Errorf("LookPath(%q), want %q", name, exeName)
					}
					if tc.path {
						return onPath, nil
					}
					return "", errors.New("not on PATH")
				},
				InstallDirs: dirs,
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNotFound) {
					t.Fatalf("Find = %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				for _, d := range dirs {
					if !strings.Contains(err.Error(), d) {
						t.Errorf("error %q does not name searched folder %q", err, d)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(tc.want, exeName); got != want {
				t.Errorf("Find = %q, want %q", got, want)
			}
		})
	}
}

func TestInstallDirs(t *testing.T) {
	got := installDirs(func(k string) string {
		if k == "ProgramFiles" {
			return `D:\Apps`
		}
		return ""
	})
	var want []string
	switch runtime.GOOS {
	case "windows":
		want = []string{`D:\Apps\Oracle\VirtualBox`, `C:\Program Files\Oracle\VirtualBox`}
	case "darwin":
		want = []string{"/Applications/VirtualBox.app/Contents/MacOS", "/usr/local/bin"}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("installDirs = %q, want %q", got, want)
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		out      string
		raw      string
		major    int
		minor    int
		patch    int
		suffix   string
		warnings int
	}{
		{out: "7.0.14r161095\n", raw: "7.0.14r161095", major: 7, minor: 0, patch: 14, suffix: "r161095"},
		{out: "7.1.4r165100\r\n", raw: "7.1.4r165100", major: 7, minor: 1, patch: 4, suffix: "r165100"},
		{out: "6.1.50_Debianr161033\n", raw: "6.1.50_Debianr161033", major: 6, minor: 1, patch: 50, suffix: "_Debianr161033"},
		{out: "7.0.0_BETA1r154081\n", raw: "7.0.0_BETA1r154081", major: 7, patch: 0, suffix: "_BETA1r154081"},
		// On Linux VBoxManage warns first when the kernel driver is missing.
		{out: "WARNING: The vboxdrv kernel module is not loaded. Either there is no module\n" +
			"         available for the current kernel (6.1.0-18-amd64) or it failed to\n" +
			"         load. Please recompile the kernel module and install it by\n\n" +
			"           sudo /sbin/vboxconfig\n\n" +
			"         You will not be able to start VMs until this problem is fixed.\n" +
			"7.0.14r161095\n", raw: "7.0.14r161095", major: 7, minor: 0, patch: 14, suffix: "r161095", warnings: 5},
	} {
		v, err := ParseVersion(tc.out)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tc.out, err)
			continue
		}
		if v.Raw != tc.raw || v.Major != tc.major || v.Minor != tc.minor || v.Patch != tc.patch || v.Suffix != tc.suffix || len(v.Warnings) != tc.warnings {
			t.Errorf("ParseVersion(%q) = %+v", tc.out, v)
		}
	}
	for _, bad := range []string{"", "\n", "Oracle VM VirtualBox Command Line Management Interface", "7.0", "v7.0.14"} {
		if v, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %+v, want an error", bad, v)
		}
	}
}

func TestAtLeast(t *testing.T) {
	v := Version{Major: 6, Minor: 1}
	if !v.AtLeast(6, 1) || !v.AtLeast(5, 9) || v.AtLeast(6, 2) || v.AtLeast(7, 0) {
		t.Errorf("AtLeast is wrong for %+v", v)
	}
}

func TestReadVersionRunsTheTool(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("writes a shell script")
	}
	dir := t.TempDir()
	tool := filepath.Join(dir, "VBoxManage")
	script := "#!/bin/sh\n[ \"$1\" = --version ] || exit 2\necho 7.0.14r161095\necho 'VBoxManage: warning: something' >&2\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := ReadVersion(context.Background(), tool)
	if err != nil {
		t.Fatal(err)
	}
	if v.Raw != "7.0.14r161095" || len(v.Warnings) != 1 {
		t.Errorf("ReadVersion = %+v", v)
	}
	if err := os.WriteFile(tool, []byte("#!/bin/sh\necho 'VBoxManage: error: broken' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadVersion(context.Background(), tool); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("ReadVersion of a failing tool: %v", err)
	}
}
