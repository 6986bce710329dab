package envfmt

import "strings"

// hostile is a value meant to break quoting; refusedBy lists the shells
// (of those run here) that must refuse it.
type hostile struct {
	name      string
	value     string
	refusedBy []Shell
}

// hostileValues returns the values checked byte for byte. dir is a plain
// absolute path: the injection attempts create files in it if quoting
// fails anywhere.
func hostileValues(dir string) []hostile {
	noNewline := []Shell{Tcsh}
	return []hostile{
		{"DOCKER_HOST", "tcp://127.0.0.1:41235", nil},
		{"DOCKER_CERT_PATH", "/home/dev user/.local/share/devbundle/machines/my 'vm' \"1\"/docker certs", nil},
		{"DOCKER_TLS_VERIFY", "1", nil},
		{"DOCKER_API_VERSION", "1.43", nil},
		{"H_SPACES", "  two  spaces\tand\ttabs   ", nil},
		{"H_SQUOTE", "it's", nil},
		{"H_SQUOTES", "'''", nil},
		{"H_QUOTES", `say "hi" and 'bye' "unbalanced`, nil},
		{"H_DOLLAR", "$HOME ${HOME} $((1+1)) $1 $$ $status $? $", nil},
		{"H_SUBST", "$(touch " + dir + "/pwned-dollar)", nil},
		{"H_BACKTICK", "`touch " + dir + "/pwned-backtick`", nil},
		{"H_FISH_SUBST", "(touch " + dir + "/pwned-paren)", nil},
		{"H_BREAKOUT1", "'; touch " + dir + "/pwned-squote; '", nil},
		{"H_BREAKOUT2", "\"; touch " + dir + "/pwned-dquote; \"", nil},
		{"H_BREAKOUT3", "\\'; touch " + dir + "/pwned-bsquote; '", nil},
		{"H_BREAKOUT4", "x\ntouch " + dir + "/pwned-newline\n", noNewline},
		{"H_BANG", "!! !$ !-1 !# a!b !echo !", nil},
		{"H_BANG2", "\\! !\\ \\\\! !!!", nil},
		{"H_HIST_SUBST", "^a^b", nil},
		{"H_BACKSLASH", `\ \\ \n \' \" trailing\`, nil},
		{"H_LONE_BACKSLASH", `\`, nil},
		{"H_NEWLINE", "line1\nline2", noNewline},
		{"H_NEWLINES", "\n\nends with newlines\n\n", noNewline},
		{"H_UTF8", "héllo wörld 日本語 🐳 ‘smart’ “quotes” \u00a0nbsp", nil},
		{"H_SEMI", "a;b; c;", nil},
		{"H_HASH", "# not a comment", nil},
		{"H_HASH2", "a #b", nil},
		{"H_GLOB", "* ? [a-z] ~ ~root {a,b} **/*", nil},
		{"H_OPS", "a|b&c<d>e(f)g && || >> 2>&1", nil},
		{"H_DASH", "-x", nil},
		{"H_DASHDASH", "--", nil},
		{"H_DASH_E", "-e", nil},
		{"H_EMPTY", "", nil},
		{"H_CMDISH", "%PATH% ^ !x!", nil},
		{"H_EQ", "a=b==c", nil},
		{"H_SEARCH_PATH", "/a b::/c:", nil},
		{"H_COLON", ":", nil},
		{"H_INVALID_UTF8", "bad \xff\xfe bytes \xc3", nil},
		{"H_LONG", strings.Repeat("x'!$`\" ", 700), nil},
	}
}
