package virtualbox

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm/virtualbox/internal/fakevbox"
)

// fakeToolName is the file name under which the test binary acts as the
// fake VBoxManage.
func fakeToolName() string {
	if runtime.GOOS == "windows" {
		return "VBoxManage.exe"
	}
	return "VBoxManage"
}

// TestMain turns this test binary into the fake VBoxManage when it runs
// under that name; its state lives in "state" next to it.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeToolName() {
		os.Exit(fakevbox.Main(os.Args[1:], os.Stdout, os.Stderr, filepath.Join(filepath.Dir(os.Args[0]), "state")))
	}
	// A race-enabled binary sleeps a second at exit to let reports
	// through; the fake runs dozens of times per test.
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// fakeVBox is a fake VBoxManage installed in a test's folder.
type fakeVBox struct {
	tool  string // its path
	state string // its state folder
}

// newFakeVBox installs the fake (a link to, or copy of, this test binary)
// and fails the test at its end if the fake met an invocation it does not
// know.
func newFakeVBox(t *testing.T, knobs fakevbox.Knobs) *fakeVBox {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(filepath.Join(bin, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeVBox{tool: filepath.Join(bin, fakeToolName()), state: filepath.Join(bin, "state")}
	if err := os.Link(self, f.tool); err != nil {
		copyFile(t, self, f.tool)
	}
	if err := fakevbox.WriteKnobs(f.state, knobs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		data, err := os.ReadFile(filepath.Join(f.state, fakevbox.UnknownFile))
		if err == nil && len(data) > 0 {
			t.Errorf("the fake VBoxManage was called in ways it does not know (a stub matching nothing):\n%s", data)
		}
	})
	return f
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// calls returns the invocations the fake saw, one string each.
func (f *fakeVBox) calls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.state, fakevbox.CallsFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// provider returns a provider driving the fake, with short retry and
// poll intervals.
func (f *fakeVBox) provider(t *testing.T) *Provider {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := New(ctx, Options{VBoxManage: f.tool, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p.v.delay = 20 * time.Millisecond
	p.haltPoll = 20 * time.Millisecond
	return p
}

// testBox is the box.ovf of testdata/box.
func testBox(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "box", "box.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func listenOn(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// A call the fake does not know fails with an "error:" line and lands in
// unknown.log, which newFakeVBox's cleanup turns into a test failure.
func TestFakeRecordsUnknownCalls(t *testing.T) {
	f := newFakeVBox(t, fakevbox.Knobs{})
	p := f.provider(t)
	_, err := p.v.run(context.Background(), "clonevm", "x", "--register")
	if err == nil || !strings.Contains(err.Error(), "Invalid command 'clonevm'") {
		t.Errorf("unknown call: %v", err)
	}
	log := filepath.Join(f.state, fakevbox.UnknownFile)
	data, err := os.ReadFile(log)
	if err != nil || strings.TrimSpace(string(data)) != `["clonevm","x","--register"]` {
		t.Fatalf("unknown.log = %q, %v", data, err)
	}
	_ = os.Remove(log) // seen: do not fail this test for it
}
