package virtualbox

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// appliance is what `VBoxManage import <ovf> --dry-run` tells about a box.
type appliance struct {
	// Disks are the "Disks:" lines: the images the OVF references.
	Disks []ovfDisk
	// Systems is how many "Virtual system N:" blocks there are.
	Systems int
	// Name is the VM name VirtualBox suggests.
	Name string
	// HardDisks are the "Hard disk image" entries of virtual system 0, in
	// the order listed (the first is the one the box boots from).
	HardDisks []hardDiskUnit
}

// ovfDisk is one line of the "Disks:" block: tab-separated disk ID,
// capacity in bytes, populated size, format URI, file reference, size,
// chunk size and compression (IAppliance::disks in the VirtualBox SDK).
type ovfDisk struct {
	ID       string
	Capacity int64 // bytes; -1 when unknown
	Format   string
	Href     string
}

// hardDiskUnit is a "Hard disk image" entry: the unit number that import's
// --unit option takes, and the image it reads.
type hardDiskUnit struct {
	Unit   int
	Source string // the image file, as the OVF names it
	Target string // where VirtualBox would put it
	// Capacity is the image's virtual size in bytes (-1 when unknown).
	Capacity int64
}

var (
	systemLine = regexp.MustCompile(`^Virtual system (\d+):\s*$`)
	entryLine  = regexp.MustCompile(`^\s*(\d+): (.*)$`)
	nameEntry  = regexp.MustCompile(`^Suggested VM name "(.*)"\s*$`)
)

// parseDryRun reads the output of `VBoxManage import <ovf> --dry-run`.
func parseDryRun(out string) (appliance, error) {
	var a appliance
	inDisks := false
	system := -1
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "Disks:":
			inDisks = true
			continue
		case systemLine.MatchString(trimmed):
			inDisks = false
			system, _ = strconv.Atoi(systemLine.FindStringSubmatch(trimmed)[1])
			a.Systems++
			continue
		case trimmed == "":
			inDisks = false
			continue
		}
		if inDisks {
			d, err := parseDiskLine(trimmed)
			if err != nil {
				return appliance{}, err
			}
			a.Disks = append(a.Disks, d)
			continue
		}
		if system != 0 {
			continue
		}
		m := entryLine.FindStringSubmatch(line)
		if m == nil {
			continue // a "(change with ...)" hint, progress, "OK."
		}
		unit, _ := strconv.Atoi(m[1])
		text := m[2]
		if n := nameEntry.FindStringSubmatch(text); n != nil {
			a.Name = n[1]
			continue
		}
		if rest, ok := strings.CutPrefix(text, "Hard disk image: "); ok {
			hd, err := parseHardDisk(unit, rest)
			if err != nil {
				return appliance{}, err
			}
			a.HardDisks = append(a.HardDisks, hd)
		}
	}
	if a.Systems == 0 {
		return appliance{}, fmt.Errorf("import --dry-run described no virtual system: %q", firstLines(out, 4))
	}
	for i, hd := range a.HardDisks {
		a.HardDisks[i].Capacity = -1
		for _, d := range a.Disks {
			if d.Href == hd.Source {
				a.HardDisks[i].Capacity = d.Capacity
			}
		}
	}
	return a, nil
}

// parseDiskLine reads one tab-separated line of the "Disks:" block.
func parseDiskLine(line string) (ovfDisk, error) {
	f := strings.Split(line, "\t")
	if len(f) < 5 {
		return ovfDisk{}, fmt.Errorf("import --dry-run: disk line %q has %d fields, want 8", line, len(f))
	}
	capacity, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return ovfDisk{}, fmt.Errorf("import --dry-run: disk line %q: capacity %q is not a number", line, f[1])
	}
	return ovfDisk{ID: f[0], Capacity: capacity, Format: f[3], Href: f[4]}, nil
}

// parseHardDisk reads "source image=X, target path=Y, controller=C;channel=N"
// (the controller part is missing when the OVF attaches the disk nowhere).
// Paths may hold commas: the source runs to ", target path=", the target
// to the last ", controller=".
func parseHardDisk(unit int, s string) (hardDiskUnit, error) {
	src, rest, ok := strings.Cut(s, ", target path=")
	src, ok2 := strings.CutPrefix(src, "source image=")
	if !ok || !ok2 || src == "" {
		return hardDiskUnit{}, fmt.Errorf("import --dry-run: hard disk entry %d is %q, not \"source image=..., target path=...\"", unit, s)
	}
	target := rest
	if i := strings.LastIndex(rest, ", controller="); i >= 0 {
		target = rest[:i]
	}
	return hardDiskUnit{Unit: unit, Source: src, Target: target}, nil
}

// check reports what makes a box unusable.
func (a appliance) check(ovf string) error {
	var errs []error
	if a.Systems != 1 {
		errs = append(errs, fmt.Errorf("box %q describes %d virtual machines; devbundle imports boxes with exactly one", ovf, a.Systems))
	}
	if len(a.HardDisks) == 0 {
		errs = append(errs, fmt.Errorf("box %q attaches no hard disk; its box.ovf is damaged or not for VirtualBox", ovf))
	}
	return errors.Join(errs...)
}
