package dberr

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("boom"), 1},
		{"usage", Usage("bad flag %q", "--x"), 1},
		{"not running", NotRunning("default"), 3},
		{"wrapped not running", fmt.Errorf("ssh: %w", NotRunning("dev")), 3},
		{"service", ServiceUnavailable("service %q is not running", "docker"), 126},
		{"hinted service", WithHint(ServiceUnavailable("x"), "run y"), 126},
		{"interrupted", fmt.Errorf("box add: %w", ErrInterrupted), 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestMessagesKeepText(t *testing.T) {
	err := NotRunning("default")
	want := `machine "default" is not running; run "devbundle up"`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	h := WithHint(errors.New("no box"), "run \"devbundle box add\"")
	if Hint(fmt.Errorf("up: %w", h)) != "run \"devbundle box add\"" {
		t.Errorf("hint lost through wrapping")
	}
	if WithHint(nil, "x") != nil {
		t.Errorf("WithHint(nil) must stay nil")
	}
}
