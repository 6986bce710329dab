// Package envfmt renders environment variables as a script for a user's
// shell, so that `devbundle env` output can be evaluated safely.
//
// A [Document] holds [Block]s of [Var]s, each block under optional header
// comment lines, and the command that printed it (shown in a closing hint
// that tells the user how to apply the output). [Render] writes it for one
// [Shell]; [RenderJSON] writes it as a JSON object. [Detect] guesses the
// user's shell.
//
// Every value is quoted so that no value can run code or expand anything in
// the target shell. Where a shell cannot carry a value safely, rendering
// fails with an error naming the variable, the character and what to do;
// nothing is written then.
//
// Quoting per shell (a value's ' is shown as it appears in the output):
//
//	bash, zsh, sh  'v'  ' -> '\''          any value
//	fish           'v'  \ -> \\, ' -> \'   any value
//	tcsh           'v'  ' -> '\'', ! -> \!  no newline
//	powershell     'v'  ' -> ''            no newline, valid UTF-8
//	cmd            v    (no quoting)       see below
//
// tcsh expands history (!) even inside single quotes and in eval'd or
// sourced text; \! is the one escape it honours there, other backslashes
// stay literal. Its apply command, eval "`...`", joins all lines into one,
// so newlines are refused, every line ends in ";", and comments are written
// as the no-op command ": '...';" because an interactive tcsh does not treat
// # as a comment (and in a non-interactive one a # would swallow the rest of
// the joined line).
//
// PowerShell also treats the typographic single quotes U+2018 to U+201B as
// quotes; they are doubled like '. Its apply command, "... |
// Invoke-Expression", evaluates each output line on its own, so newlines
// are refused and the output has no blank lines (Invoke-Expression refuses
// an empty string).
//
// cmd has no quoting, so values are written as they are and any value
// containing a character cmd would interpret is refused: control characters
// (newline and tab included), % ^ & | < > " and !. Parentheses and spaces
// are allowed (C:\Program Files (x86)\...). cmd reads the output in the
// console code page, so non-ASCII text arrives intact only with a UTF-8 code
// page (chcp 65001).
//
// In every shell, values with control characters other than tab and newline
// (escape sequences, carriage returns, NUL) are refused: they are never
// legitimate in these variables, and printed on a terminal they could
// rewrite what the user sees. Use JSON for such values.
//
// On cmd, SET K= removes K, so an empty value removes the variable there;
// Windows PowerShell does the same when assigning an empty string.
//
// The script-readable form ([RenderOptions.ScriptReadable]) prints
// NAME=value lines with the value unquoted, for scripts that split each line
// at its first "="; values containing a newline or carriage return are
// refused there, since they would break that line format.
package envfmt
