package envfmt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// validName reports whether name is a portable variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidateName returns an error unless name is a portable environment
// variable name: a letter or _ followed by letters, digits or _.
func ValidateName(name string) error {
	if validName(name) {
		return nil
	}
	return fmt.Errorf("invalid variable name %q: use only letters, digits and _, not starting with a digit", name)
}

// badControl returns the first control character that no shell output may
// carry: everything below 0x20 except tab and newline, and DEL.
func badControl(s string) (rune, bool) {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f {
			return r, true
		}
	}
	return 0, false
}

// cmdUnsafe lists the characters cmd would interpret in SET K=v, in a
// FOR /f ... DO @%i loop or when the line is pasted: variable expansion
// (% and, with delayed expansion, !), escapes (^), operators (& | < >) and
// quotes (") that change how those are read.
const cmdUnsafe = "%^&|<>\"!"

// unsupported returns the first character of value that shell sh cannot
// carry, beyond the control characters refused everywhere.
func unsupported(sh Shell, value string) (rune, bool) {
	switch sh {
	case Tcsh:
		if strings.ContainsRune(value, '\n') {
			return '\n', true
		}
	case PowerShell:
		if strings.ContainsRune(value, '\n') {
			return '\n', true
		}
		if !utf8.ValidString(value) {
			return utf8.RuneError, true
		}
	case Cmd:
		if !utf8.ValidString(value) {
			return utf8.RuneError, true
		}
		for _, r := range value {
			if r < 0x20 || strings.ContainsRune(cmdUnsafe, r) {
				return r, true
			}
		}
	}
	return 0, false
}

// charName describes r for an error message.
func charName(r rune) string {
	switch r {
	case '\n':
		return "a newline"
	case '\t':
		return "a tab"
	case utf8.RuneError:
		return "bytes that are not valid UTF-8"
	}
	if r < 0x20 || r == 0x7f {
		return fmt.Sprintf("the control character %q", string(r))
	}
	return fmt.Sprintf("%q", string(r))
}

// quotePOSIX quotes s for bash, zsh and sh: single quotes, each ' written
// as close quote, backslash, quote, open quote. Nothing is special inside
// single quotes, newlines included.
func quotePOSIX(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var fishReplacer = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// quoteFish quotes s for fish: single quotes, in which only \\ and \' are
// escapes.
func quoteFish(s string) string {
	return "'" + fishReplacer.Replace(s) + "'"
}

var tcshReplacer = strings.NewReplacer(`'`, `'\''`, `!`, `\!`)

// quoteTcsh quotes s for tcsh: single quotes, ' written as for POSIX and
// every ! as \! (tcsh expands history even inside single quotes, also in eval'd and
// sourced text, and \! is the only escape it honours there; other
// backslashes stay literal). s must not contain a newline.
func quoteTcsh(s string) string {
	return "'" + tcshReplacer.Replace(s) + "'"
}

// psQuotes are the characters PowerShell accepts as a single quote: the
// ASCII one and the typographic ones. Inside a single-quoted string each is
// escaped by doubling it.
const psQuotes = "'\u2018\u2019\u201a\u201b"

// quotePowerShell quotes s for PowerShell: a verbatim single-quoted string,
// with every kind of single quote doubled. s must not contain a newline.
// Bytes that are not valid UTF-8 are copied unchanged (callers refuse them).
func quotePowerShell(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if strings.ContainsRune(psQuotes, r) {
			b.WriteString(s[i : i+n])
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// plainWord reports whether w can appear unquoted in a command line of every
// shell (used to show the hint's command readably).
func plainWord(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("_./:=,@+-", r):
		default:
			return false
		}
	}
	return true
}
