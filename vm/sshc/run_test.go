//go:build linux

package sshc

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitCodesAndStreams(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)
	ctx := context.Background()

	for _, tc := range []struct {
		cmd  string
		code int
	}{
		{"true", 0},
		{"exit 7", 7},
		{"false", 1},
		{"kill -TERM $$", 128 + 15},
	} {
		code, err := c.Run(ctx, tc.cmd, RunOptions{})
		if err != nil || code != tc.code {
			t.Errorf("Run(%q) = %d, %v; want %d, nil", tc.cmd, code, err, tc.code)
		}
	}

	var stdout, stderr bytes.Buffer
	code, err := c.Run(ctx, `read line; echo "out:$line:$(id -un)"; echo err >&2; exit 2`, RunOptions{
		Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil || code != 2 || stdout.String() != "out:hello:"+testUser+"\n" || stderr.String() != "err\n" {
		t.Fatalf("got code %d err %v stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}

	out, err := c.Output(ctx, "printf 'a b'")
	if err != nil || string(out) != "a b" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	_, err = c.Output(ctx, "echo partial; echo 'no such thing' >&2; exit 5")
	var cmdErr *CommandError
	if !errors.As(err, &cmdErr) || cmdErr.ExitCode != 5 || cmdErr.Stderr != "no such thing" {
		t.Fatalf("Output error = %#v", err)
	}
	if !strings.Contains(err.Error(), "exited with status 5: no such thing") {
		t.Fatalf("error text %q", err)
	}
}

func TestRunCancelKillsCommand(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, err := c.Run(ctx, "sleep 37.5", RunOptions{})
	took := time.Since(start)
	if code != -1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %d, %v; want -1 and a deadline error", code, err)
	}
	if took > 3*time.Second {
		t.Fatalf("Run returned %s after its context ended", took)
	}
	// The command itself is gone too (sshd delivers the KILL signal).
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := c.Output(context.Background(), "pgrep -u "+testUser+" -f 'slee[p] 37.5' || true")
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled command still runs: pids %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The connection is still usable after a cancelled command.
	if out, err := c.Output(context.Background(), "echo ok"); err != nil || string(out) != "ok\n" {
		t.Fatalf("after cancel: %q, %v", out, err)
	}
	// An already-ended context does not start anything.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := c.Run(done, "true", RunOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run on a cancelled context: %v", err)
	}
}

// TestKeepAliveClosesDeadConnection freezes the sshd process serving the
// connection, as a VM that stopped answering would: keepalives notice,
// and commands fail instead of hanging.
func TestKeepAliveClosesDeadConnection(t *testing.T) {
	f := newFixture(t)
	wo := f.waitOptions(f.insecure)
	wo.KeepAlive = 200 * time.Millisecond
	c, err := Wait(context.Background(), wo)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	out, err := c.Output(context.Background(), "echo $PPID")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	// The shell's parent is the per-connection sshd process, started by
	// this test's sshd.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()

	closed := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection to a frozen server was not closed by keepalives")
	}
	if _, err := c.Run(context.Background(), "true", RunOptions{}); err == nil {
		t.Fatal("Run on a closed connection succeeded")
	}
}
