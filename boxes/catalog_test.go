package boxes

import (
	"encoding/json"
	"strings"
	"testing"
)

const sampleCatalog = `{
  "name": "acme/dev",
  "description": "dev box",
  "versions": [
    {"version": "1.0.0", "providers": [
      {"name": "libvirt", "url": "https://h/1.0.0/libvirt.box", "checksum_type": "sha256", "checksum": "` + "aa3f7a3e9a6ef2d6b1f3b0b6c4bf2f3c9c2d1e0f1a2b3c4d5e6f708192a3b4c5" + `", "architecture": "amd64"},
      {"name": "virtualbox", "url": "https://h/1.0.0/vb.box"}
    ]},
    {"version": "1.10.0", "providers": [
      {"name": "libvirt", "url": "https://h/1.10.0/amd64.box", "architecture": "amd64", "checksum_type": "none"},
      {"name": "libvirt", "url": "https://h/1.10.0/arm64.box", "architecture": "arm64"},
      {"name": "libvirt", "url": "https://h/1.10.0/any.box", "architecture": "unknown", "default_architecture": true}
    ]},
    {"version": "1.9.0", "providers": [
      {"name": "libvirt", "url": "https://h/1.9.0/any.box", "architecture": "unknown", "default_architecture": true}
    ]},
    {"version": "2.0.0-beta1", "providers": [
      {"name": "libvirt", "url": "https://h/2.0.0-beta1/any.box"}
    ]}
  ]
}`

func TestParseCatalog(t *testing.T) {
	c, err := ParseCatalog([]byte(sampleCatalog))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "acme/dev" || len(c.Versions) != 4 || len(c.Versions[1].Providers) != 3 || !c.Versions[1].Providers[2].DefaultArchitecture {
		t.Fatalf("parsed = %+v", c)
	}
	bad := `{"name":"x/y","versions":[{"version":"one","providers":[]},{"version":"1.0","providers":[{"name":"","url":""},{"name":"lib virt","url":"u","checksum_type":"sha256","checksum":"abcd"},{"name":"libvirt","url":"u","architecture":"x/86"}]}]}`
	_, err = ParseCatalog([]byte(bad))
	for _, want := range []string{`invalid version "one"`, "no provider name", "no url", `invalid provider name "lib virt"`, "want 64 hex digits", `invalid architecture "x/86"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not report %q", err, want)
		}
	}
	if _, err := ParseCatalog([]byte(`[1,2]`)); err == nil {
		t.Error("a JSON array was accepted as a catalog")
	}
}

func TestChoose(t *testing.T) {
	c, err := ParseCatalog([]byte(sampleCatalog))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts    ChooseOptions
		version string
		url     string
		arch    string
		sum     string
		err     string
	}{
		// Newest version wins by version order, not string order; the
		// prerelease is not picked without asking for it.
		{opts: ChooseOptions{Provider: "libvirt", Architecture: "amd64"}, version: "1.10.0", url: "https://h/1.10.0/amd64.box", arch: "amd64"},
		{opts: ChooseOptions{Provider: "libvirt", Architecture: "arm64"}, version: "1.10.0", url: "https://h/1.10.0/arm64.box", arch: "arm64"},
		// No exact match: the default "unknown" entry.
		{opts: ChooseOptions{Provider: "libvirt", Architecture: "i386"}, version: "1.10.0", url: "https://h/1.10.0/any.box", arch: "unknown"},
		{opts: ChooseOptions{Provider: "libvirt", Architecture: "amd64", Constraint: "< 1.10"}, version: "1.9.0", url: "https://h/1.9.0/any.box", arch: "unknown"},
		{opts: ChooseOptions{Provider: "libvirt", Architecture: "amd64", Constraint: "~> 1.0.0"}, version: "1.0.0", arch: "amd64",
			sum: "sha256:aa3f7a3e9a6ef2d6b1f3b0b6c4bf2f3c9c2d1e0f1a2b3c4d5e6f708192a3b4c5"},
		{opts: ChooseOptions{Provider: "libvirt", Constraint: ">= 2.0.0-beta1"}, version: "2.0.0-beta1", arch: "unknown"},
		// A provider with neither architecture nor default: its only entry.
		{opts: ChooseOptions{Provider: "virtualbox", Architecture: "arm64"}, version: "1.0.0", arch: "unknown"},
		{opts: ChooseOptions{Architecture: "amd64", Constraint: "1.0.0"}, err: "several providers (libvirt, virtualbox): pass --provider"},
		{opts: ChooseOptions{Provider: "docker"}, err: `no provider "docker"`},
		{opts: ChooseOptions{Constraint: "> 5"}, err: `no version matching "> 5"; available: 2.0.0-beta1, 1.10.0, 1.9.0, 1.0.0`},
		{opts: ChooseOptions{Constraint: "not a constraint"}, err: `invalid version constraint "not a constraint"`},
		{opts: ChooseOptions{Constraint: "2.0.0-beta1", Provider: "virtualbox"}, err: `no provider "virtualbox" for architecture`},
	}
	for _, tt := range tests {
		got, err := c.Choose(tt.opts)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Choose(%+v) err = %v, want %q", tt.opts, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Choose(%+v): %v", tt.opts, err)
			continue
		}
		if got.Version != tt.version || got.Architecture != tt.arch || (tt.url != "" && got.Provider.URL != tt.url) || got.Checksum.String() != tt.sum {
			t.Errorf("Choose(%+v) = %s %s %s %q", tt.opts, got.Version, got.Architecture, got.Provider.URL, got.Checksum)
		}
	}
}

func TestHostArchitecture(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "riscv64": "riscv64"} {
		if got := goarchToBox(goarch); got != want {
			t.Errorf("goarchToBox(%q) = %q, want %q", goarch, got, want)
		}
	}
	if HostArchitecture() == "" {
		t.Error("empty host architecture")
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"user/box", "box", "my-box_1.2", "org/team/box", "a+b"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/box", "user/", "a//b", "../x", "./x", "a/..", ".hidden", "a b", `a\b`, "a:b",
		"user-VAGRANTSLASH-box", strings.Repeat("x", 201)} {
		err := CheckName(bad)
		if err == nil || !strings.Contains(err.Error(), "pass --name") {
			t.Errorf("CheckName(%q) = %v, want an error with a hint", bad, err)
		}
	}
	if escapeName("a/b/c") != "a-VAGRANTSLASH-b-VAGRANTSLASH-c" || unescapeName("a-VAGRANTSLASH-b") != "a/b" {
		t.Error("escaping is not Vagrant's")
	}
}

func TestCatalogURLFor(t *testing.T) {
	got, err := catalogURLFor("", "hashicorp/bionic64")
	if err != nil || got != "https://vagrantcloud.com/api/v2/vagrant/hashicorp/bionic64" {
		t.Fatalf("default server: %q, %v", got, err)
	}
	got, err = catalogURLFor("http://127.0.0.1:8080/", "a/b")
	if err != nil || got != "http://127.0.0.1:8080/api/v2/vagrant/a/b" {
		t.Fatalf("custom server: %q, %v", got, err)
	}
	if _, err := catalogURLFor("ftp://x", "a/b"); err == nil || !strings.Contains(err.Error(), "--box-server") {
		t.Fatalf("bad server: %v", err)
	}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		in   string
		want Metadata
		err  string
	}{
		{in: `{"provider":"libvirt","format":"qcow2","virtual_size":40}`, want: Metadata{Provider: "libvirt", Format: "qcow2", VirtualSizeGB: 40}},
		{in: `{"provider":"libvirt","virtual_size":"2.5"}`, want: Metadata{Provider: "libvirt", VirtualSizeGB: 2.5}},
		{in: `{"provider":"virtualbox","architecture":"arm64"}`, want: Metadata{Provider: "virtualbox", Architecture: "arm64"}},
		{in: `{"provider":"libvirt","disks":[{"path":"a.img","name":"root"},{"path":"b.img","format":"qcow2"}]}`,
			want: Metadata{Provider: "libvirt", Disks: []Disk{{Path: "a.img", Name: "root"}, {Path: "b.img", Format: "qcow2"}}}},
		{in: `{}`, err: `no "provider"`},
		{in: `{"provider":"lib/virt"}`, err: `invalid provider "lib/virt"`},
		{in: `{"provider":"libvirt","virtual_size":"big"}`, err: "invalid virtual_size"},
		{in: `{"provider":"libvirt","virtual_size":-1}`, err: "invalid virtual_size"},
		{in: `{"provider":"libvirt","disks":[{"name":"x"}]}`, err: "disks[0]: no path"},
		{in: `{"provider":"libvirt","disks":[{"path":"/etc/passwd"}]}`, err: "must be relative"},
		{in: `{"provider":"libvirt","disks":[{"path":"a/../../x"}]}`, err: "leaves the box folder"},
		{in: `{"provider":`, err: "invalid box metadata.json"},
	}
	for _, tt := range tests {
		got, err := ParseMetadata([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMetadata(%s) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMetadata(%s): %v", tt.in, err)
			continue
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(tt.want)
		if string(a) != string(b) {
			t.Errorf("ParseMetadata(%s) = %s, want %s", tt.in, a, b)
		}
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte(sampleCatalog), "libvirt", "amd64", ">= 1.0")
	f.Add([]byte(`{"name":"a/b","versions":[{"version":"1","providers":[{"name":"libvirt","url":"x"}]}]}`), "", "", "")
	f.Add([]byte(`{"versions":null}`), "virtualbox", "i386", "~> 1.2")
	f.Fuzz(func(t *testing.T, data []byte, provider, arch, constraint string) {
		c, err := ParseCatalog(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		choice, err := c.Choose(ChooseOptions{Provider: provider, Architecture: arch, Constraint: constraint})
		if err != nil {
			return
		}
		// Whatever is chosen must be offered, and fit what was asked.
		if provider != "" && choice.Provider.Name != provider {
			t.Fatalf("asked for %q, got %q", provider, choice.Provider.Name)
		}
		if choice.Architecture != ArchUnknown && arch != "" && choice.Architecture != arch {
			t.Fatalf("asked for %q, got %q", arch, choice.Architecture)
		}
		if checkVersion(choice.Version) != nil {
			t.Fatalf("chose unusable version %q", choice.Version)
		}
		if !isPlainWord(choice.Architecture) || !isPlainWord(choice.Provider.Name) {
			t.Fatalf("chose unusable folder names %q %q", choice.Architecture, choice.Provider.Name)
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"provider":"libvirt","format":"qcow2","virtual_size":40}`))
	f.Add([]byte(`{"provider":"libvirt","disks":[{"path":"a.img"},{"path":"sub/b.img"}]}`))
	f.Add([]byte(`{"provider":"virtualbox","virtual_size":"1e3"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			return
		}
		if m.Provider == "" || !isPlainWord(m.Provider) {
			t.Fatalf("accepted provider %q", m.Provider)
		}
		if m.Provider == ProviderLibvirt {
			images, err := m.Images(t.TempDir())
			if err != nil {
				t.Fatalf("accepted disks whose paths fail: %v", err)
			}
			for _, img := range images {
				if !strings.HasPrefix(img, "..") && img != "" && img[0] != '/' {
					continue
				}
				t.Fatalf("disk path %q leaves the box folder", img)
			}
		}
	})
}
