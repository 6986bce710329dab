package vm

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Runner runs a command in the guest and returns its standard output.
type Runner interface {
	Output(ctx context.Context, cmd string) ([]byte, error)
}

// OSRelease is the guest's /etc/os-release, parsed.
type OSRelease map[string]string

// ReadOSRelease reads and parses /etc/os-release in the guest.
func ReadOSRelease(ctx context.Context, r Runner) (OSRelease, error) {
	out, err := r.Output(ctx, "cat /etc/os-release")
	if err != nil {
		return nil, fmt.Errorf("read /etc/os-release: %w", err)
	}
	return ParseOSRelease(string(out)), nil
}

// ParseOSRelease parses os-release text: KEY=value lines, values maybe
// quoted with single or double quotes.
func ParseOSRelease(text string) OSRelease {
	out := OSRelease{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if v[0] == '"' {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = v[1 : len(v)-1]
				}
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	return out
}
