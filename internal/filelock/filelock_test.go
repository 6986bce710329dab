package filelock

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the second process: with this variable set,
// TestMain locks the named file, says so on stdout and holds the lock until
// its stdin is closed.
const helperEnv = "DEVBUNDLE_FILELOCK_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(runHelper(path))
	}
	os.Exit(m.Run())
}

func runHelper(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := Lock(ctx, path)
	if err != nil {
		_, _ = os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	_, _ = os.Stdout.WriteString("locked\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := unlock(); err != nil {
		return 3
	}
	return 0
}

func TestTwoProcessesSerialise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper did not lock: %q, %v", line, err)
	}

	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("TryLock while another process holds the lock: ok=%v err=%v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	_, err = Lock(ctx, path)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a short deadline: err = %v, want deadline exceeded", err)
	}

	// Release in the helper while we wait: Lock must then succeed.
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		unlock, err := Lock(ctx, path)
		if err == nil {
			err = unlock()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = stdin.Close()
	if err := <-got; err != nil {
		t.Fatalf("Lock after the helper released: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

func TestTwoHandlesInOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
	}
	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("second TryLock on a held lock: ok=%v err=%v", ok, err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err == nil {
		t.Fatal("second unlock returned no error")
	}
	unlock2, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock: ok=%v err=%v", ok, err)
	}
	_ = unlock2()
}

// Many goroutines each take the lock and bump a counter that is read and
// written non-atomically; the lock alone keeps the count right.
func TestLockExcludesConcurrentHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.lock")
	counter := filepath.Join(t.TempDir(), "n")
	if err := os.WriteFile(counter, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards only inside, to keep the race detector honest
	inside := 0
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				unlock, err := Lock(context.Background(), path)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				inside++
				n := inside
				mu.Unlock()
				if n != 1 {
					errs <- errors.New("two holders at once")
				}
				time.Sleep(time.Millisecond)
				mu.Lock()
				inside--
				mu.Unlock()
				if err := unlock(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestLockMissingFolder(t *testing.T) {
	_, err := Lock(context.Background(), filepath.Join(t.TempDir(), "no", "such", "x.lock"))
	if err == nil || !strings.Contains(err.Error(), "open lock file") {
		t.Fatalf("err = %v, want an open error", err)
	}
}
