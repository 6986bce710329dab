module github.com/devbundle/devbundle

go 1.26.8

require (
	github.com/adrg/xdg v0.5.3
	github.com/digitalocean/go-libvirt v0.0.0-20260217163227-273eaa321819
	github.com/hashicorp/go-version v1.7.0
	github.com/klauspost/compress v1.17.11
	github.com/schollz/progressbar/v3 v3.17.1
	github.com/spf13/cobra v1.8.1
	go.yaml.in/yaml/v3 v3.0.4
	golang.org/x/crypto v0.48.0
	golang.org/x/sys v0.41.0
	golang.org/x/term v0.40.0
	libvirt.org/go/libvirtxml v1.12002.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
)
