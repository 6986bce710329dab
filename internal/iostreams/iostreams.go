// Package iostreams is devbundle's one door to the terminal.
//
// Out carries data (and the scripts that `env` prints for eval); ErrOut
// carries progress, hints, warnings and logs. Progress bars appear only
// when ErrOut is a terminal, and colour only when it is a terminal and
// NO_COLOR is unset.
package iostreams

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// IOStreams bundles the standard streams with what is known about them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	color     bool
	debug     bool
}

// System returns streams bound to the process's stdin, stdout and stderr.
// getenv is consulted for NO_COLOR and TERM.
func System(getenv func(string) string) *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	s.color = s.stderrTTY && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	return s
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Test returns streams backed by buffers, none of them a terminal.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks each stream as a terminal or not (for tests).
func (s *IOStreams) SetTTY(stdin, stdout, stderr bool) {
	s.stdinTTY, s.stdoutTTY, s.stderrTTY = stdin, stdout, stderr
}

// IsStdinTTY reports whether standard input is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// CanPrompt reports whether the user can be asked a question.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// ColorEnabled reports whether ErrOut may carry colour.
func (s *IOStreams) ColorEnabled() bool { return s.color }

// SetDebug turns debug logging on ErrOut on or off.
func (s *IOStreams) SetDebug(on bool) { s.debug = on }

// Debugf writes a debug line to ErrOut when --debug is on.
func (s *IOStreams) Debugf(format string, args ...any) {
	if s.debug {
		fmt.Fprintf(s.ErrOut, "debug: "+format+"\n", args...)
	}
}

// Infof writes a progress or hint line to ErrOut.
func (s *IOStreams) Infof(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, format+"\n", args...)
}

// Warnf writes a warning line to ErrOut.
func (s *IOStreams) Warnf(format string, args ...any) {
	prefix := "warning: "
	if s.color {
		prefix = "\x1b[33mwarning:\x1b[0m "
	}
	fmt.Fprintf(s.ErrOut, prefix+format+"\n", args...)
}

// Errorf writes an error line to ErrOut.
func (s *IOStreams) Errorf(format string, args ...any) {
	prefix := "error: "
	if s.color {
		prefix = "\x1b[31merror:\x1b[0m "
	}
	fmt.Fprintf(s.ErrOut, prefix+format+"\n", args...)
}

// Confirm asks a yes/no question on ErrOut and reads the answer from In.
// It returns false without asking when the user cannot be prompted.
func (s *IOStreams) Confirm(question string) (bool, error) {
	if !s.CanPrompt() {
		return false, nil
	}
	fmt.Fprintf(s.ErrOut, "%s [y/N] ", question)
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := s.In.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, fmt.Errorf("read answer: %w", err)
		}
	}
	answer := strings.ToLower(strings.TrimSpace(string(line)))
	return answer == "y" || answer == "yes", nil
}
