package envfmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Var is one environment variable.
type Var struct {
	Name  string
	Value string
}

// Block is a group of variables (usually one service's) under optional
// header comment lines. Comment lines are plain text without the shell's
// comment marker.
type Block struct {
	Comment []string
	Vars    []Var
}

// Document is everything one `env` invocation prints.
type Document struct {
	Blocks []Block
	// ApplyCommand is the command line (program and arguments) that prints
	// this document, for example {"devbundle", "env", "docker"}. The closing
	// hint wraps it the way the target shell applies it, e.g.
	// eval "$(devbundle env docker)". Include every flag the user passed
	// (--unset, --shell for powershell and cmd, ...). Empty: no hint.
	ApplyCommand []string
}

// RenderOptions selects the form of the output.
type RenderOptions struct {
	// Unset prints commands that remove the variables instead of setting
	// them; values are ignored.
	Unset bool
	// ScriptReadable prints NAME=value lines only (no quoting, comments or
	// hint), whatever the shell. Values with newlines are refused. It cannot
	// be combined with Unset.
	ScriptReadable bool
}

// hintHeader introduces the closing hint.
const hintHeader = "Run this command to configure your shell:"

// dialect is how one shell writes each kind of line.
type dialect struct {
	set     func(name, value string) string
	unset   func(name string) string
	comment func(text string) string
	// apply wraps the already quoted command line the way users apply it.
	apply func(cmdline string) string
	// word quotes one word of the command line shown in the hint; ok is
	// false when the shell cannot show it.
	word func(w string) (string, bool)
	// blankLines: whether blank lines may separate blocks.
	blankLines bool
}

func posixDialect() dialect {
	return dialect{
		set:        func(n, v string) string { return "export " + n + "=" + quotePOSIX(v) },
		unset:      func(n string) string { return "unset " + n },
		comment:    hashComment,
		apply:      func(c string) string { return `eval "$(` + c + `)"` },
		word:       quotedUnlessPlain(quotePOSIX),
		blankLines: true,
	}
}

var dialects = map[Shell]dialect{
	Bash: posixDialect(),
	Zsh:  posixDialect(),
	Sh:   posixDialect(),
	Fish: {
		set:        func(n, v string) string { return "set -gx " + n + " " + quoteFish(v) + ";" },
		unset:      func(n string) string { return "set -e " + n + ";" },
		comment:    hashComment,
		apply:      func(c string) string { return c + " | source" },
		word:       quotedUnlessPlain(quoteFish),
		blankLines: true,
	},
	// tcsh: every line ends in ";" because eval "`...`" joins all lines
	// into one command line, and comments are the no-op command ":" with a
	// quoted argument, because an interactive tcsh does not treat # as a
	// comment (and a # in the joined line would swallow everything after
	// it in a non-interactive one).
	Tcsh: {
		set:        func(n, v string) string { return "setenv " + n + " " + quoteTcsh(v) + ";" },
		unset:      func(n string) string { return "unsetenv " + n + ";" },
		comment:    func(t string) string { return ": " + quoteTcsh(t) + ";" },
		apply:      func(c string) string { return "eval \"`" + c + "`\"" },
		word:       quotedUnlessPlain(quoteTcsh),
		blankLines: true,
	},
	// powershell: `... | Invoke-Expression` evaluates each output line on
	// its own and fails on an empty one, so there are no blank lines.
	PowerShell: {
		set:     func(n, v string) string { return "$Env:" + n + " = " + quotePowerShell(v) },
		unset:   func(n string) string { return "Remove-Item Env:" + n + " -ErrorAction SilentlyContinue" },
		comment: hashComment,
		apply:   func(c string) string { return "& " + c + " | Invoke-Expression" },
		word: func(w string) (string, bool) {
			if plainWord(w) || plainWindowsPath(w) {
				return w, true
			}
			if _, bad := unsupported(PowerShell, w); bad {
				return "", false
			}
			return quotePowerShell(w), true
		},
	},
	Cmd: {
		set:   func(n, v string) string { return "SET " + n + "=" + v },
		unset: func(n string) string { return "SET " + n + "=" },
		comment: func(t string) string {
			if t == "" {
				return "REM"
			}
			return "REM " + t
		},
		apply: func(c string) string { return `@FOR /f "tokens=*" %i IN ('` + c + `') DO @%i` },
		word: func(w string) (string, bool) {
			if plainWord(w) || plainWindowsPath(w) {
				return w, true
			}
			if _, bad := unsupported(Cmd, w); bad || strings.ContainsAny(w, `'`) {
				return "", false
			}
			return `"` + w + `"`, true
		},
		blankLines: true,
	},
}

func hashComment(t string) string {
	if t == "" {
		return "#"
	}
	return "# " + t
}

func quotedUnlessPlain(quote func(string) string) func(string) (string, bool) {
	return func(w string) (string, bool) {
		if plainWord(w) {
			return w, true
		}
		return quote(w), true
	}
}

// plainWindowsPath reports whether w is a plain word that may also contain
// backslashes (C:\Users\me\devbundle.exe), which PowerShell and cmd read
// literally.
func plainWindowsPath(w string) bool {
	return strings.Contains(w, `\`) && plainWord(strings.ReplaceAll(w, `\`, "_"))
}

// Render writes doc for shell sh to w. It checks everything first and
// writes nothing when any variable name, value or comment cannot be written
// safely for sh; the error then names every problem, one per line.
func Render(w io.Writer, sh Shell, doc Document, opts RenderOptions) error {
	var out []byte
	var err error
	if opts.ScriptReadable {
		out, err = renderScriptReadable(doc, opts)
	} else {
		out, err = renderShell(sh, doc, opts)
	}
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write env output: %w", err)
	}
	return nil
}

func renderShell(sh Shell, doc Document, opts RenderOptions) ([]byte, error) {
	d, ok := dialects[sh]
	if !ok {
		return nil, fmt.Errorf("unknown shell %q: use one of %s", string(sh), shellList())
	}
	errs := checkNames(doc)
	var b bytes.Buffer
	for i, blk := range doc.Blocks {
		if i > 0 && d.blankLines {
			b.WriteByte('\n')
		}
		for _, line := range blk.Comment {
			if err := checkComment(sh, line); err != nil {
				errs = append(errs, err)
				continue
			}
			b.WriteString(d.comment(line) + "\n")
		}
		for _, v := range blk.Vars {
			if opts.Unset {
				b.WriteString(d.unset(v.Name) + "\n")
				continue
			}
			if err := checkValue(sh, v); err != nil {
				errs = append(errs, err)
				continue
			}
			b.WriteString(d.set(v.Name, v.Value) + "\n")
		}
	}
	if len(doc.ApplyCommand) > 0 {
		cmdline, err := hintCommand(sh, d, doc.ApplyCommand)
		if err != nil {
			errs = append(errs, err)
		} else {
			if len(doc.Blocks) > 0 && d.blankLines {
				b.WriteByte('\n')
			}
			b.WriteString(d.comment(hintHeader) + "\n")
			b.WriteString(d.comment(d.apply(cmdline)) + "\n")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b.Bytes(), nil
}

// hintCommand quotes the words of the command shown in the hint.
func hintCommand(sh Shell, d dialect, argv []string) (string, error) {
	words := make([]string, 0, len(argv))
	for _, a := range argv {
		if r, bad := badControl(a); bad {
			return "", fmt.Errorf("hint command argument %q contains %s", a, charName(r))
		}
		q, ok := d.word(a)
		if !ok || strings.Contains(q, "\n") {
			return "", fmt.Errorf("hint command argument %q cannot be shown for %s: leave it out of the apply command or use another --shell", a, sh)
		}
		words = append(words, q)
	}
	return strings.Join(words, " "), nil
}

// checkNames returns one error for each invalid or repeated name.
func checkNames(doc Document) []error {
	var errs []error
	seen := map[string]bool{}
	for _, blk := range doc.Blocks {
		for _, v := range blk.Vars {
			switch {
			case !validName(v.Name):
				errs = append(errs, ValidateName(v.Name))
			case seen[v.Name]:
				errs = append(errs, fmt.Errorf("variable %q is listed more than once: each variable may appear in one block only", v.Name))
			}
			seen[v.Name] = true
		}
	}
	return errs
}

func checkComment(sh Shell, line string) error {
	if r, bad := badControl(line); bad {
		return fmt.Errorf("comment line %q contains %s", line, charName(r))
	}
	if strings.Contains(line, "\n") {
		return fmt.Errorf("comment line %q contains a newline: pass each line separately", line)
	}
	if r, bad := unsupported(sh, line); bad {
		return fmt.Errorf("comment line %q contains %s, which %s cannot carry", line, charName(r), sh)
	}
	return nil
}

// checkValue returns an error when v's value cannot be set in sh.
func checkValue(sh Shell, v Var) error {
	r, bad := badControl(v.Value)
	if !bad {
		r, bad = unsupported(sh, v.Value)
	}
	if !bad {
		return nil
	}
	return fmt.Errorf("variable %q cannot be set in %s: its value contains %s; %s", v.Name, sh, charName(r), alternatives(sh, v.Value))
}

// alternatives suggests the other output forms that can carry value.
func alternatives(sh Shell, value string) string {
	var ok []string
	for _, other := range Shells() {
		if other == sh {
			continue
		}
		if _, bad := badControl(value); bad {
			break
		}
		if _, bad := unsupported(other, value); !bad {
			ok = append(ok, string(other))
		}
	}
	if len(ok) == 0 {
		return "use --json"
	}
	return "use --shell " + orList(ok) + ", or --json"
}

func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func renderScriptReadable(doc Document, opts RenderOptions) ([]byte, error) {
	if opts.Unset {
		return nil, errors.New("--unset cannot be combined with --script-readable: choose one")
	}
	errs := checkNames(doc)
	var b bytes.Buffer
	for _, blk := range doc.Blocks {
		for _, v := range blk.Vars {
			if r, bad := badControl(v.Value); bad || strings.Contains(v.Value, "\n") {
				if !bad {
					r = '\n'
				}
				errs = append(errs, fmt.Errorf("variable %q cannot be printed with --script-readable: its value contains %s; use --json", v.Name, charName(r)))
				continue
			}
			b.WriteString(v.Name + "=" + v.Value + "\n")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b.Bytes(), nil
}

// RenderJSON writes the document's variables to w as one JSON object,
// name to value, with the keys sorted, followed by a newline. Comments and
// the hint are left out. Values must be valid UTF-8 (JSON strings cannot
// carry other bytes) and free of NUL; control characters are escaped.
func RenderJSON(w io.Writer, doc Document) error {
	errs := checkNames(doc)
	vars := map[string]string{}
	for _, blk := range doc.Blocks {
		for _, v := range blk.Vars {
			switch {
			case !utf8.ValidString(v.Value):
				errs = append(errs, fmt.Errorf("variable %q cannot be printed as JSON: its value contains %s", v.Name, charName(utf8.RuneError)))
			case strings.ContainsRune(v.Value, 0):
				errs = append(errs, fmt.Errorf("variable %q cannot be printed as JSON: its value contains %s", v.Name, charName(0)))
			default:
				vars[v.Name] = v.Value
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(vars); err != nil {
		return fmt.Errorf("encode env as JSON: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write env output: %w", err)
	}
	return nil
}
