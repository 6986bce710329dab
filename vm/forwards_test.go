package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// listenSeq hands out listeners on fixed ports, as a kernel might.
func listenSeq(ports ...int) func(string, string) (net.Listener, error) {
	i := 0
	return func(string, string) (net.Listener, error) {
		if i >= len(ports) {
			return nil, errors.New("out of ports")
		}
		p := ports[i]
		i++
		return fakeListener{port: p}, nil
	}
}

type fakeListener struct{ port int }

func (fakeListener) Accept() (net.Conn, error) { return nil, errors.New("fake") }
func (fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr          { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: f.port} }

func TestFillForwardsPicksAvoidsAndKeeps(t *testing.T) {
	in := []Forward{
		{Name: "ssh", GuestPort: 22},
		{Name: "docker", GuestPort: 2376, HostPort: 50000},
		{Name: "k8s", GuestPort: 6443, HostIP: "127.0.0.1"},
	}
	// 40001 is another machine's, 50000 is asked for by this one and 40002
	// comes twice: none may be handed out.
	pp := PortPicker{Avoid: map[int]bool{40001: true}, Listen: listenSeq(40001, 50000, 40002, 40002, 40003)}
	got, err := FillForwards(in, pp)
	if err != nil {
		t.Fatal(err)
	}
	want := []Forward{
		{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40002},
		{Name: "docker", GuestPort: 2376, HostIP: "127.0.0.1", HostPort: 50000},
		{Name: "k8s", GuestPort: 6443, HostIP: "127.0.0.1", HostPort: 40003},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fillForwards =\n%+v\nwant\n%+v", got, want)
	}
	if in[0].HostPort != 0 {
		t.Fatal("fillForwards changed its input")
	}
}

func TestFillForwardsRejects(t *testing.T) {
	for name, fw := range map[string][]Forward{
		"wildcard address": {{Name: "ssh", GuestPort: 22, HostIP: "0.0.0.0"}},
		"guest port 0":     {{Name: "ssh"}},
		"same guest port":  {{Name: "a", GuestPort: 22}, {Name: "b", GuestPort: 22}},
		"host port range":  {{Name: "a", GuestPort: 22, HostPort: 70000}},
	} {
		if _, err := FillForwards(fw, PortPicker{Listen: listenSeq(1, 2, 3)}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// With the real kernel: distinct ports, each free to bind afterwards.
func TestPortPickerReal(t *testing.T) {
	ports, err := PortPicker{}.Pick(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p < 1024 {
			t.Fatalf("ports %v: duplicate or privileged", ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("picked port %d is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestPortsInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	free, _ := PortPicker{}.Pick(1)
	err = PortsInUse(context.Background(), []Forward{
		{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: free[0]},
		{Name: "docker", GuestPort: 2376, HostIP: "127.0.0.1", HostPort: busy},
	})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d (docker, guest port 2376)", busy)) {
		t.Fatalf("portsInUse = %v", err)
	}
	if strings.Contains(err.Error(), strconv.Itoa(free[0])) {
		t.Fatalf("free port reported busy: %v", err)
	}
	if err := PortsInUse(context.Background(), []Forward{{GuestPort: 22, HostIP: "127.0.0.1", HostPort: free[0]}}); err != nil {
		t.Fatalf("free port: %v", err)
	}
}
