package docker

import (
	"slices"
	"strings"
	"testing"
)

// debianUnit has the shape of `systemctl cat docker.service` on Debian 12
// with docker.io: socket activation (-H fd://), containerd's socket and
// $DOCKER_OPTS from /etc/default/docker.
const debianUnit = `# /lib/systemd/system/docker.service
[Unit]
Description=Docker Application Container Engine
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
# restart the docker process if it exits prematurely
Restart=on-failure

[Install]
WantedBy=multi-user.target
`

const debianExec = "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS"

const tlsTail = " --tlsverify --tlscacert=/etc/docker/devbundle/ca.pem --tlscert=/etc/docker/devbundle/server-cert.pem --tlskey=/etc/docker/devbundle/server-key.pem -H tcp://0.0.0.0:2376"

func TestExecStart(t *testing.T) {
	cases := []struct {
		name, unit, want string
	}{
		{"debian", debianUnit, debianExec},
		{"our own drop-in is ignored", debianUnit + `
# /etc/systemd/system/docker.service.d/devbundle.conf
[Service]
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// --tlsverify -H tcp://0.0.0.0:2376
`, debianExec},
		{"another drop-in's override counts", debianUnit + `
# /etc/systemd/system/docker.service.d/zz-local.conf
[Service]
ExecStart=
ExecStart=/usr/bin/dockerd --debug
`, "/usr/bin/dockerd --debug"},
		{"continued lines (CentOS 7 style, no -H)", `# /usr/lib/systemd/system/docker.service
[Service]
ExecStart=/usr/bin/dockerd-current \
          --add-runtime docker-runc=/usr/libexec/docker/docker-runc-current \
          $OPTIONS \
          $ADD_REGISTRY
ExecReload=/bin/kill -s HUP $MAINPID
`, "/usr/bin/dockerd-current --add-runtime docker-runc=/usr/libexec/docker/docker-runc-current $OPTIONS $ADD_REGISTRY"},
		{"ExecStart outside [Service] is not the command", `# /lib/systemd/system/docker.service
[Unit]
ExecStart=/bin/false
[Service]
ExecStart=/usr/bin/dockerd
`, "/usr/bin/dockerd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := execStart(tc.unit)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if _, err := execStart("# /lib/systemd/system/docker.service\n[Service]\nType=notify\n"); err == nil {
		t.Errorf("a unit without ExecStart was accepted")
	}
	if _, err := execStart(""); err == nil {
		t.Errorf("an empty unit was accepted")
	}
}

func TestFilterFlags(t *testing.T) {
	cases := []struct {
		in       string
		want     string
		wantHost bool
	}{
		{debianExec, debianExec, true},
		{"/usr/bin/dockerd", "/usr/bin/dockerd", false},
		{"/usr/bin/dockerd -H tcp://0.0.0.0:2375 -H unix:///var/run/docker.sock", "/usr/bin/dockerd -H unix:///var/run/docker.sock", true},
		{"/usr/bin/dockerd --host=tcp://0.0.0.0:2375 --host=fd://", "/usr/bin/dockerd --host=fd://", true},
		{"/usr/bin/dockerd -Htcp://1.2.3.4:2375 -Hfd://", "/usr/bin/dockerd -Hfd://", true},
		{"/usr/bin/dockerd -H :2375", "/usr/bin/dockerd", false},
		{"/usr/bin/dockerd --host \"tcp://0.0.0.0:2375\" --debug", "/usr/bin/dockerd --debug", false},
		{"/usr/bin/dockerd --tlsverify --tlscacert /old/ca.pem --tlscert=/old/cert.pem --tlskey /old/key.pem --tls -H fd://", "/usr/bin/dockerd -H fd://", true},
		{`-/usr/bin/dockerd "--label=a b" $OPTIONS`, `-/usr/bin/dockerd "--label=a b" $OPTIONS`, false},
	}
	for _, tc := range cases {
		words, err := splitCommand(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		got, host := filterFlags(words)
		if strings.Join(got, " ") != tc.want || host != tc.wantHost {
			t.Errorf("%q:\n got  %q host %v\n want %q host %v", tc.in, strings.Join(got, " "), host, tc.want, tc.wantHost)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	got, err := splitCommand(`  /bin/x 'a b'  "c \" d" e\ f	g  `)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/x", "'a b'", `"c \" d"`, `e\ f`, "g"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := splitCommand(`/bin/x "open`); err == nil {
		t.Errorf("an unterminated quote was accepted")
	}
}

func TestRenderDropIn(t *testing.T) {
	got, err := RenderDropIn(DropInOptions{Unit: debianUnit})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Written by devbundle on every ` + "`up`" + `; edits are replaced.
# dockerd also listens on tcp://0.0.0.0:2376 with TLS, accepting only clients
# with a certificate of this machine's CA, beside its unix socket.
[Service]
ExecStart=
ExecStart=` + debianExec + tlsTail + "\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(string(got), "2375") {
		t.Errorf("plain TCP port in the drop-in")
	}

	// Rendering from a unit that already carries the drop-in gives the same
	// file: a second `up` changes nothing.
	again, err := RenderDropIn(DropInOptions{Unit: debianUnit + "\n# " + DropInPath + "\n" + string(got)})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(got) {
		t.Errorf("rendering is not stable over its own drop-in:\n%s", again)
	}

	// No host of its own: the unix socket is put back.
	got, err = RenderDropIn(DropInOptions{Unit: "# /usr/lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd $OPTIONS\n"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "ExecStart=/usr/bin/dockerd $OPTIONS -H unix:///var/run/docker.sock"+tlsTail+"\n") {
		t.Errorf("no unix socket kept:\n%s", got)
	}
}

func TestRenderDropInProxy(t *testing.T) {
	got, err := RenderDropIn(DropInOptions{Unit: debianUnit, Proxy: `http://us%40r:p"w\d@proxy.example:3128`})
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := `Environment="HTTP_PROXY=http://us%%40r:p\"w\\d@proxy.example:3128" "HTTPS_PROXY=http://us%%40r:p\"w\\d@proxy.example:3128" "NO_PROXY=localhost,127.0.0.1"` +
		` "http_proxy=http://us%%40r:p\"w\\d@proxy.example:3128" "https_proxy=http://us%%40r:p\"w\\d@proxy.example:3128" "no_proxy=localhost,127.0.0.1"` + "\n"
	if !strings.Contains(string(got), "[Service]\n"+wantEnv+"ExecStart=\n") {
		t.Errorf("proxy lines:\n%s\nwant:\n%s", got, wantEnv)
	}
	if _, err := RenderDropIn(DropInOptions{Unit: debianUnit, Proxy: "http://proxy\nExecStartPre=/bin/evil"}); err == nil {
		t.Errorf("a proxy with a newline was accepted")
	}
	if DropInMode("http://u:p@proxy:3128") != 0o600 || DropInMode("http://proxy:3128") != 0o644 || DropInMode("") != 0o644 {
		t.Errorf("drop-in modes: credentials must make it 0600")
	}
}

func TestCheckDaemonJSON(t *testing.T) {
	for _, ok := range []string{"", "  \n", `{}`, `{"log-driver": "journald", "storage-driver": "overlay2"}`} {
		if err := checkDaemonJSON([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	err := checkDaemonJSON([]byte(`{"hosts": ["unix:///var/run/docker.sock"], "tlsverify": true}`))
	if err == nil || !strings.Contains(err.Error(), `"hosts", "tlsverify"`) || !strings.Contains(err.Error(), "daemon.json") {
		t.Errorf("conflicting keys: %v", err)
	}
	if err := checkDaemonJSON([]byte(`{"hosts": [`)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("broken JSON: %v", err)
	}
}
