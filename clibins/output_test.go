package clibins

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/envfmt"
)

func dockerResult(path string) Result {
	return Result{Client: Client{Name: "docker", Service: "docker"}, Version: "20.10.24", Platform: Platform{"linux", "amd64"}, Path: path, From: FromDownload}
}

// Every shell gets the location as comments, a PATH export putting the
// folder first, and the hint to apply it; on PATH already: no export.
func TestDocumentEveryShell(t *testing.T) {
	r := dockerResult("/home/u/.cache/devbundle/bin/docker/20.10.24/linux-amd64/docker")
	doc := r.Document(DocumentOptions{PATH: "/usr/bin:/bin", ListSeparator: ':', ApplyCommand: []string{"devbundle", "install-cli", "docker"}})
	wantPath := "/home/u/.cache/devbundle/bin/docker/20.10.24/linux-amd64:/usr/bin:/bin"
	for _, sh := range envfmt.Shells() {
		var buf bytes.Buffer
		if err := envfmt.Render(&buf, sh, doc, envfmt.RenderOptions{}); err != nil {
			t.Errorf("%s: %v", sh, err)
			continue
		}
		out := buf.String()
		wantSet := map[envfmt.Shell]string{
			envfmt.Bash: "export PATH='" + wantPath + "'", envfmt.Zsh: "export PATH='" + wantPath + "'", envfmt.Sh: "export PATH='" + wantPath + "'",
			envfmt.Fish: "set -gx PATH '" + wantPath + "';", envfmt.Tcsh: "setenv PATH '" + wantPath + "';",
			envfmt.PowerShell: "$Env:PATH = '" + wantPath + "'", envfmt.Cmd: "SET PATH=" + wantPath,
		}[sh]
		if !slices.Contains(strings.Split(out, "\n"), wantSet) {
			t.Errorf("%s: no line %q in\n%s", sh, wantSet, out)
		}
		if !strings.Contains(out, r.Path) || !strings.Contains(out, "docker 20.10.24") || !strings.Contains(out, "install-cli docker") {
			t.Errorf("%s: location, version or hint missing:\n%s", sh, out)
		}
	}

	r.From = FromPATH
	r.Path = "/usr/bin/docker"
	doc = r.Document(DocumentOptions{PATH: "/usr/bin:/bin", ApplyCommand: []string{"devbundle", "install-cli", "docker"}})
	var buf bytes.Buffer
	if err := envfmt.Render(&buf, envfmt.Bash, doc, envfmt.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Errorf("on PATH already: line %q is not a comment:\n%s", line, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "/usr/bin/docker") {
		t.Errorf("on PATH already: location missing:\n%s", buf.String())
	}
}
