package docker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
)

// The live probe goes over TLS with the client certificate Enable made, to
// the fake dockerd (a real TLS server that checks client certificates),
// and drops Debian's suffix.
func TestServerVersion(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	ctx := context.Background()
	v, err := e.svc.ServerVersion(ctx, e.m, e.dir)
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if v != "20.10.24" {
		t.Errorf("ServerVersion = %q, want 20.10.24 (the server says 20.10.24+dfsg1)", v)
	}

	// Through the registry, as install-cli asks.
	reg := services.NewRegistry(e.svc)
	machineDir := strings.TrimSuffix(e.dir, "/docker")
	if v, err := services.ServerVersion(ctx, reg, e.m, machineDir, Name); err != nil || v != "20.10.24" {
		t.Errorf("services.ServerVersion = %q, %v", v, err)
	}

	// dockerd stopped: exit 126 with a hint naming --cli-version.
	if err := e.svc.Stop(ctx, services.Context{Guest: e.guest, Machine: e.m, Dir: e.dir}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ServerVersion(ctx, e.m, e.dir)
	if !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Fatalf("stopped dockerd: %v, want exit 126", err)
	}
	if h := dberr.Hint(err); !strings.Contains(h, "--cli-version") || !strings.Contains(h, "devbundle up") {
		t.Errorf("hint %q names neither up nor --cli-version", h)
	}

	// Not enabled on the machine at all.
	delete(e.m.Services, Name)
	_, err = services.ServerVersion(ctx, reg, e.m, machineDir, Name)
	if !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(dberr.Hint(err), "--cli-version") {
		t.Errorf("docker not enabled: %v (hint %q)", err, dberr.Hint(err))
	}
}

// Another machine's client certificate is refused: a clear error, exit 126.
func TestServerVersionWrongCertificates(t *testing.T) {
	e := newEnableEnv(t)
	e.mustEnable(t)
	other := newEnableEnv(t)
	other.mustEnable(t)
	_, err := e.svc.ServerVersion(context.Background(), e.m, other.dir)
	if !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Fatalf("foreign certificates: %v, want exit 126", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error does not say it is about certificates: %v", err)
	}
}
