package virtualbox

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// script is a scripted VBoxManage: one answer per call.
type script struct {
	answers []answer
	calls   [][]string
}

type answer struct {
	stdout, stderr string
	exit           int
}

func (s *script) exec(_ context.Context, _ string, args []string) ([]byte, []byte, error) {
	s.calls = append(s.calls, args)
	if len(s.answers) == 0 {
		return nil, []byte("VBoxManage: error: unexpected call"), errors.New("exit status 2")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	var err error
	if a.exit != 0 {
		err = &exec.ExitError{}
	}
	return []byte(a.stdout), []byte(a.stderr), err
}

const lockedErr = "VBoxManage: error: The machine 'x' is already locked for a session (or being unlocked)\n" +
	"VBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports\n" +
	"VBoxManage: error: Context: \"LockMachine(a->session, LockType_Write)\" at line 640 of file VBoxManageModifyVM.cpp\n"

func TestRunRetriesTransientErrors(t *testing.T) {
	for _, transientErr := range []string{lockedErr, "VBoxManage: error: The object is not ready\n"} {
		s := &script{answers: []answer{{stderr: transientErr, exit: 1}, {stderr: transientErr, exit: 1}, {stdout: "ok\n"}}}
		v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Millisecond}
		out, err := v.run(context.Background(), "modifyvm", "x", "--cpus", "2")
		if err != nil || out != "ok\n" || len(s.calls) != 3 {
			t.Errorf("run = %q, %v after %d calls", out, err, len(s.calls))
		}
	}
	// It gives up after its attempts, with VirtualBox's message.
	s := &script{}
	for range 5 {
		s.answers = append(s.answers, answer{stderr: lockedErr, exit: 1})
	}
	v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Millisecond}
	_, err := v.run(context.Background(), "unregistervm", "x", "--delete")
	if err == nil || len(s.calls) != 5 {
		t.Fatalf("run = %v after %d calls", err, len(s.calls))
	}
	want := "VBoxManage unregistervm: The machine 'x' is already locked for a session (or being unlocked); Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports"
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}

func TestRunDoesNotRetryOtherErrors(t *testing.T) {
	s := &script{answers: []answer{{stderr: "VBoxManage: error: A NAT rule of this name already exists\n", exit: 1}, {stdout: "never"}}}
	v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Millisecond}
	if _, err := v.run(context.Background(), "modifyvm"); err == nil || len(s.calls) != 1 || !strings.Contains(err.Error(), "NAT rule of this name") {
		t.Errorf("run = %v after %d calls", err, len(s.calls))
	}
}

// An "error:" line on stderr is a failure even when VBoxManage exits 0;
// other stderr (progress, warnings) is not.
func TestRunErrorOnStderrWithExitZero(t *testing.T) {
	s := &script{answers: []answer{
		{stdout: "half", stderr: "VBoxManage: error: Failed to create the host-only adapter\n"},
		{stdout: "fine", stderr: "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nVBoxManage: warning: something odd\n"},
	}}
	v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Millisecond}
	if out, err := v.run(context.Background(), "hostonlyif", "create"); err == nil || !strings.Contains(err.Error(), "Failed to create the host-only adapter") {
		t.Errorf("exit 0 with an error line: %q, %v", out, err)
	}
	if out, err := v.run(context.Background(), "unregistervm"); err != nil || out != "fine" {
		t.Errorf("progress and warning on stderr: %q, %v", out, err)
	}
}

func TestRunNotFound(t *testing.T) {
	s := &script{answers: []answer{{exit: 1, stderr: "VBoxManage: error: Could not find a registered machine named 'gone'\n" +
		"VBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports\n"}}}
	v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Millisecond}
	_, err := v.run(context.Background(), "showvminfo", "gone", "--machinereadable")
	if !errors.Is(err, vm.ErrNotFound) || !strings.Contains(err.Error(), "Could not find a registered machine named 'gone'") || len(s.calls) != 1 {
		t.Errorf("run = %v after %d calls", err, len(s.calls))
	}
}

func TestRunHonoursContext(t *testing.T) {
	s := &script{}
	for range 5 {
		s.answers = append(s.answers, answer{stderr: lockedErr, exit: 1})
	}
	v := &vbm{path: "VBoxManage", exec: s.exec, delay: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.run(ctx, "modifyvm")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("run = %v after %s", err, time.Since(start))
	}
	if _, err := v.run(ctx, "modifyvm"); !errors.Is(err, context.DeadlineExceeded) || len(s.calls) != 1 {
		t.Errorf("run with an ended context = %v, %d calls", err, len(s.calls))
	}
}
