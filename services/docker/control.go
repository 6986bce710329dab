package docker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm/sshc"
)

func runOpts(stdout, stderr io.Writer) sshc.RunOptions {
	return sshc.RunOptions{Stdout: stdout, Stderr: stderr}
}

// unitState reads docker.service's LoadState and ActiveState.
func unitState(ctx context.Context, g services.Guest) (load, active string, err error) {
	out, err := g.Output(ctx, "systemctl show -p LoadState -p ActiveState docker.service")
	if err != nil {
		return "", "", fmt.Errorf("read docker.service's state: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "LoadState":
			load = v
		case "ActiveState":
			active = v
		}
	}
	if load == "" {
		return "", "", fmt.Errorf("read docker.service's state: no LoadState in %q", strings.TrimSpace(string(out)))
	}
	return load, active, nil
}

// Status is running when docker.service is active, unavailable when the
// machine has no docker unit, else stopped.
func (s *Service) Status(ctx context.Context, sc services.Context) (services.Status, error) {
	load, active, err := unitState(ctx, sc.Guest)
	if err != nil {
		return "", err
	}
	switch {
	case load == "not-found":
		return services.StatusUnavailable, nil
	case active == "active" || active == "reloading":
		return services.StatusRunning, nil
	}
	return services.StatusStopped, nil
}

// Start starts docker.service (which brings docker.socket along).
func (s *Service) Start(ctx context.Context, sc services.Context) error {
	if err := s.requireUnit(ctx, sc); err != nil {
		return err
	}
	return dockerctl(ctx, sc.Guest, "start docker", `systemctl start docker.service || exit 2`)
}

// stopScript stops docker.socket with docker.service where there is one:
// a listening socket would start dockerd again on the next connection.
const stopScript = `units=docker.service
if systemctl cat docker.socket >/dev/null 2>&1; then units="docker.socket docker.service"; fi
systemctl stop $units`

// Stop stops dockerd and its socket.
func (s *Service) Stop(ctx context.Context, sc services.Context) error {
	if err := s.requireUnit(ctx, sc); err != nil {
		return err
	}
	return mustRoot(ctx, sc.Guest, "stop docker", stopScript)
}

// requireUnit refuses (exit 126) when the machine has no docker unit.
func (s *Service) requireUnit(ctx context.Context, sc services.Context) error {
	load, _, err := unitState(ctx, sc.Guest)
	if err != nil {
		return err
	}
	if load == "not-found" {
		name := "the machine"
		if sc.Machine != nil {
			name = fmt.Sprintf("machine %q", sc.Machine.Name)
		}
		return dberr.WithHint(dberr.ServiceUnavailable("docker is not installed in %s", name),
			`run "devbundle up --services docker"`)
	}
	return nil
}
