package envfmt

import (
	"errors"
	"fmt"
	"strings"
)

// Tiny, strict parsers of one quoted word per shell, written for the tests
// from the shells' documented rules (not from our quoting code). Each
// accepts only the forms a quoted word may take and fails on anything a
// shell would interpret outside quotes, so a successful parse also proves
// the word has no unquoted metacharacter.

// parsePOSIXWord reads a sequence of '...' segments and \' escapes.
func parsePOSIXWord(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated single quote at %d in %q", i, s)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case strings.HasPrefix(s[i:], `\'`):
			b.WriteByte('\'')
			i += 2
		default:
			return "", fmt.Errorf("unquoted %q at %d in %q", s[i], i, s)
		}
	}
	return b.String(), nil
}

// parseFishWord reads one '...' string in which \\ and \' are the only
// escapes (a backslash before anything else is literal).
func parseFishWord(s string) (string, error) {
	if len(s) < 2 || s[0] != '\'' {
		return "", fmt.Errorf("not single-quoted: %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '\''):
			b.WriteByte(s[i+1])
			i++
		case s[i] == '\'':
			if i != len(s)-1 {
				return "", fmt.Errorf("text after the closing quote at %d in %q", i, s)
			}
			return b.String(), nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", fmt.Errorf("unterminated single quote in %q", s)
}

// parseTcshWord reads '...' segments and \' escapes; inside quotes \! is
// a literal !, a bare ! would start a history substitution and a newline
// is not allowed.
func parseTcshWord(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\'':
			i++
			for {
				if i >= len(s) {
					return "", fmt.Errorf("unterminated single quote in %q", s)
				}
				c := s[i]
				if c == '\'' {
					i++
					break
				}
				switch {
				case c == '\n':
					return "", errors.New("newline inside quotes")
				case c == '!':
					return "", fmt.Errorf("unescaped ! at %d in %q", i, s)
				case c == '\\' && i+1 < len(s) && s[i+1] == '!':
					b.WriteByte('!')
					i += 2
					continue
				}
				b.WriteByte(c)
				i++
			}
		case strings.HasPrefix(s[i:], `\'`):
			b.WriteByte('\'')
			i += 2
		default:
			return "", fmt.Errorf("unquoted %q at %d in %q", s[i], i, s)
		}
	}
	return b.String(), nil
}

// parsePowerShellWord reads one verbatim '...' string, where any of
// PowerShell's single-quote characters ends the string unless doubled.
func parsePowerShellWord(s string) (string, error) {
	r := []rune(s)
	isQ := func(c rune) bool { return strings.ContainsRune(psQuotes, c) }
	if len(r) < 2 || r[0] != '\'' {
		return "", fmt.Errorf("not single-quoted: %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(r); i++ {
		if isQ(r[i]) {
			if i+1 < len(r) && isQ(r[i+1]) {
				b.WriteRune(r[i+1])
				i++
				continue
			}
			if i != len(r)-1 {
				return "", fmt.Errorf("text after the closing quote at %d in %q", i, s)
			}
			return b.String(), nil
		}
		if r[i] == '\n' {
			return "", errors.New("newline inside quotes")
		}
		b.WriteRune(r[i])
	}
	return "", fmt.Errorf("unterminated single quote in %q", s)
}
