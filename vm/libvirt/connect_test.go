package libvirt

import (
	"context"
	"github.com/devbundle/devbundle/vm/sshc"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseTarget(t *testing.T) {
	env := envOf(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u", "USER": "u"})
	tests := []struct {
		name    string
		uri     string
		env     func(string) string
		goos    string
		want    target
		wantErr string
	}{
		{
			name: "default is system",
			uri:  "",
			want: target{uri: "qemu:///system", name: "qemu:///system",
				sockets: []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"}},
		},
		{
			name: "system on macOS also looks under Homebrew",
			uri:  "qemu:///system",
			goos: "darwin",
			want: target{uri: "qemu:///system", name: "qemu:///system", sockets: []string{
				"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock",
				"/opt/homebrew/var/run/libvirt/libvirt-sock", "/opt/homebrew/var/run/libvirt/virtqemud-sock",
				"/usr/local/var/run/libvirt/libvirt-sock", "/usr/local/var/run/libvirt/virtqemud-sock",
			}},
		},
		{
			name: "session under XDG_RUNTIME_DIR",
			uri:  "qemu:///session",
			want: target{uri: "qemu:///session", name: "qemu:///session", session: true,
				sockets: []string{"/run/user/1000/libvirt/libvirt-sock", "/run/user/1000/libvirt/virtqemud-sock"}},
		},
		{
			name: "session without a runtime folder",
			uri:  "qemu:///session",
			env:  envOf(map[string]string{"HOME": "/home/u"}),
			want: target{uri: "qemu:///session", name: "qemu:///session", session: true,
				sockets: []string{"/home/u/.cache/libvirt/libvirt-sock", "/home/u/.cache/libvirt/virtqemud-sock"}},
		},
		{
			name: "explicit socket",
			uri:  "qemu+unix:///system?socket=/tmp/x.sock",
			want: target{uri: "qemu+unix:///system?socket=/tmp/x.sock", name: "qemu:///system", sockets: []string{"/tmp/x.sock"}},
		},
		{
			name: "ssh with user and port",
			uri:  "qemu+ssh://alice@build.example:2222/system?keyfile=/k&no_verify=1&known_hosts=/kh",
			want: target{uri: "qemu+ssh://alice@build.example:2222/system?keyfile=/k&no_verify=1&known_hosts=/kh", name: "qemu:///system",
				sockets: []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"},
				ssh:     &sshTarget{user: "alice", host: "build.example", port: "2222", keyFile: "/k", knownHosts: "/kh", noVerify: true}},
		},
		{
			name: "ssh defaults to the local user and port 22",
			uri:  "qemu+ssh://build.example/system",
			want: target{uri: "qemu+ssh://build.example/system", name: "qemu:///system",
				sockets: []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"},
				ssh:     &sshTarget{user: "u", host: "build.example", port: "22"}},
		},
		{name: "remote session needs a socket", uri: "qemu+ssh://h/session", wantErr: "?socket="},
		{name: "not qemu", uri: "xen:///system", wantErr: "not a QEMU URI"},
		{name: "tls transport", uri: "qemu://host/system", wantErr: `transport "tls"`},
		{name: "tcp transport", uri: "qemu+tcp://host/system", wantErr: `transport "tcp"`},
		{name: "neither system nor session", uri: "qemu:///embed", wantErr: "neither /system nor /session"},
		{name: "ssh without host", uri: "qemu+ssh:///system", wantErr: "has no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.env
			if e == nil {
				e = env
			}
			goos := tt.goos
			if goos == "" {
				goos = "linux"
			}
			got, err := parseTarget(tt.uri, e, goos)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTarget(%q) error = %v, want one containing %q", tt.uri, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTarget(%q): %v", tt.uri, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseTarget(%q) =\n%+v (ssh %+v)\nwant\n%+v (ssh %+v)", tt.uri, got, got.ssh, tt.want, tt.want.ssh)
			}
		})
	}
}

// No daemon behind the sockets: the error is one line naming the sockets
// and what to install and start.
func TestNewWithoutDaemon(t *testing.T) {
	rt := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := New(ctx, Options{
		URI:      "qemu:///session",
		CacheDir: t.TempDir(),
		Getenv:   envOf(map[string]string{"XDG_RUNTIME_DIR": rt}),
	})
	if err == nil {
		t.Fatal("New succeeded with no daemon")
	}
	msg := err.Error()
	for _, want := range []string{
		filepath.Join(rt, "libvirt", "libvirt-sock"),
		filepath.Join(rt, "libvirt", "virtqemud-sock"),
		"libvirtd -d",
		"apt-get install libvirt-daemon-system",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
}

// A socket that accepts and hangs up at once (a dying daemon) is reported
// the same way, after the next socket was tried.
func TestNewSocketHangsUp(t *testing.T) {
	rt := t.TempDir()
	sock := filepath.Join(rt, "libvirt", "libvirt-sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = New(ctx, Options{URI: "qemu:///session", CacheDir: t.TempDir(),
		Getenv: envOf(map[string]string{"XDG_RUNTIME_DIR": rt})})
	if err == nil || !strings.Contains(err.Error(), "virtqemud-sock") || !strings.Contains(err.Error(), "no libvirt daemon answers") {
		t.Fatalf("error = %v, want a no-daemon error listing both sockets", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{}); err == nil || !strings.Contains(err.Error(), "CacheDir") {
		t.Errorf("no cache folder: error = %v", err)
	}
	if _, err := New(ctx, Options{CacheDir: t.TempDir(), Network: "bridge"}); err == nil || !strings.Contains(err.Error(), `"bridge"`) {
		t.Errorf("unknown network mode: error = %v", err)
	}
	if _, err := New(ctx, Options{CacheDir: t.TempDir(), TCGCPU: "Nehalem"}); err == nil || !strings.Contains(err.Error(), `"Nehalem"`) {
		t.Errorf("unknown TCG CPU: error = %v", err)
	}
	if _, err := New(ctx, Options{CacheDir: t.TempDir(), URI: "vbox:///session"}); err == nil || !strings.Contains(err.Error(), "not a QEMU URI") {
		t.Errorf("bad URI: error = %v", err)
	}
}

func TestHop(t *testing.T) {
	tg, err := parseTarget("qemu+ssh://bob@h.example:2200/system?keyfile=/k/id&no_verify=1", envOf(nil), "linux")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{t: tg, opts: Options{KnownHostsFile: "/kh"}}
	hop, ok := p.Hop()
	want := sshc.Hop{User: "bob", Addr: "h.example:2200", KeyFile: "/k/id", KnownHostsFile: "/kh", NoVerify: true}
	if !ok || hop != want {
		t.Fatalf("Hop() = %+v, %v; want %+v", hop, ok, want)
	}
	local, _ := parseTarget("qemu:///system", envOf(nil), "linux")
	if _, ok := (&Provider{t: local}).Hop(); ok {
		t.Fatal("Hop() ok for a local daemon")
	}
}
