package fakevbox

import (
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// envelope is the part of an OVF 1.0 descriptor the fake reads, by local
// element names (DMTF DSP0243; VirtualBox adds its vbox:Machine section).
type envelope struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
	} `xml:"References>File"`
	Disks []struct {
		DiskID   string `xml:"diskId,attr"`
		Capacity string `xml:"capacity,attr"`
		FileRef  string `xml:"fileRef,attr"`
		Format   string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	Systems []virtualSystem `xml:"VirtualSystem"`
}

type virtualSystem struct {
	ID     string `xml:"id,attr"`
	OSType string `xml:"OperatingSystemSection>OSType"`
	Items  []struct {
		InstanceID      string `xml:"InstanceID"`
		ResourceType    int    `xml:"ResourceType"`
		ResourceSubType string `xml:"ResourceSubType"`
		VirtualQuantity int64  `xml:"VirtualQuantity"`
		AllocationUnits string `xml:"AllocationUnits"`
		Parent          string `xml:"Parent"`
		AddressOnParent string `xml:"AddressOnParent"`
		HostResource    string `xml:"HostResource"`
		Connection      string `xml:"Connection"`
	} `xml:"VirtualHardwareSection>Item"`
	Adapters []struct {
		Slot  int    `xml:"slot,attr"`
		MAC   string `xml:"MACAddress,attr"`
		Rules []struct {
			Name      string `xml:"name,attr"`
			Proto     string `xml:"proto,attr"`
			HostIP    string `xml:"hostip,attr"`
			HostPort  int    `xml:"hostport,attr"`
			GuestIP   string `xml:"guestip,attr"`
			GuestPort int    `xml:"guestport,attr"`
		} `xml:"NAT>Forwarding"`
	} `xml:"Machine>Hardware>Network>Adapter"`
}

// appliance is what VirtualBox makes of an OVF: per virtual system, the
// numbered description items.
type appliance struct {
	Disks   []applianceDisk
	Systems []applianceSystem
}

type applianceDisk struct {
	ID       string
	Capacity int64
	Format   string
	Href     string
}

type applianceSystem struct {
	Items []item
	// Rules are the NAT rules the vbox:Machine section gives adapter 1.
	Rules []natRule
}

// item is one description entry; Kind picks its template.
type item struct {
	Sys        int
	Unit       int
	Kind       string
	Value      string
	Target     string // harddisk: target path
	Controller int    // harddisk: unit of its controller
	Channel    string
	Slot       int
}

// Resource types of CIM_ResourceAllocationSettingData used in OVF.
const (
	rtCPU      = 3
	rtMemory   = 4
	rtIDE      = 5
	rtSCSI     = 6
	rtEthernet = 10
	rtCDROM    = 15
	rtDisk     = 17
	rtOther    = 20 // SATA: ResourceSubType AHCI
	rtUSB      = 23
	rtSound    = 35
)

// readAppliance interprets an OVF file as VirtualBox does, with the VM
// folder defaults under baseDir.
func readAppliance(path, baseDir string) (appliance, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return appliance{}, err
	}
	var env envelope
	if err := xml.Unmarshal(data, &env); err != nil {
		return appliance{}, fmt.Errorf("parse %s: %w", path, err)
	}
	var a appliance
	files := map[string]string{}
	for _, f := range env.Files {
		files[f.ID] = f.Href
	}
	diskFile := map[string]string{}
	for _, d := range env.Disks {
		c, err := strconv.ParseInt(d.Capacity, 10, 64)
		if err != nil {
			c = -1
		}
		a.Disks = append(a.Disks, applianceDisk{ID: d.DiskID, Capacity: c, Format: d.Format, Href: files[d.FileRef]})
		diskFile[d.DiskID] = files[d.FileRef]
	}
	for si, vs := range env.Systems {
		var s applianceSystem
		add := func(it item) int {
			it.Sys, it.Unit = si, len(s.Items)
			s.Items = append(s.Items, it)
			return it.Unit
		}
		name := vs.ID
		add(item{Kind: "ostype", Value: orDefault(vs.OSType, "Other")})
		add(item{Kind: "name", Value: name})
		add(item{Kind: "group", Value: "/"})
		add(item{Kind: "settingsfile", Value: joinPath(baseDir, name, name+".vbox")})
		add(item{Kind: "basefolder", Value: baseDir})
		byKind := func(types ...int) (out []int) {
			for i, it := range vs.Items {
				for _, t := range types {
					if it.ResourceType == t {
						out = append(out, i)
					}
				}
			}
			return out
		}
		for _, i := range byKind(rtCPU) {
			add(item{Kind: "cpus", Value: strconv.FormatInt(vs.Items[i].VirtualQuantity, 10)})
		}
		for _, i := range byKind(rtMemory) {
			mb := vs.Items[i].VirtualQuantity
			if u := vs.Items[i].AllocationUnits; strings.EqualFold(u, "byte") {
				mb >>= 20
			}
			add(item{Kind: "memory", Value: strconv.FormatInt(mb, 10)})
		}
		for _, i := range byKind(rtSound) {
			add(item{Kind: "sound", Value: vs.Items[i].ResourceSubType})
		}
		for range byKind(rtUSB) {
			add(item{Kind: "usb"})
		}
		for n, i := range byKind(rtEthernet) {
			add(item{Kind: "nic", Value: orDefault(vs.Items[i].Connection, "NAT"), Slot: n})
		}
		for range byKind(rtCDROM) {
			add(item{Kind: "cdrom"})
		}
		controllerUnit := map[string]int{}
		for _, i := range byKind(rtIDE, rtOther, rtSCSI) {
			it := vs.Items[i]
			kind := map[int]string{rtIDE: "ide", rtOther: "sata", rtSCSI: "scsi"}[it.ResourceType]
			controllerUnit[it.InstanceID] = add(item{Kind: kind, Value: it.ResourceSubType})
		}
		for _, i := range byKind(rtDisk) {
			it := vs.Items[i]
			id := strings.TrimPrefix(strings.TrimPrefix(it.HostResource, "ovf:/disk/"), "/disk/")
			href, ok := diskFile[id]
			if !ok {
				return appliance{}, fmt.Errorf("disk %q of virtual system %q is not in the DiskSection", it.HostResource, vs.ID)
			}
			add(item{Kind: "harddisk", Value: href, Target: joinPath(baseDir, name, href),
				Controller: controllerUnit[it.Parent], Channel: orDefault(it.AddressOnParent, "0")})
		}
		for _, ad := range vs.Adapters {
			if ad.Slot != 0 {
				continue
			}
			for _, r := range ad.Rules {
				proto := "tcp"
				if r.Proto == "0" {
					proto = "udp"
				}
				s.Rules = append(s.Rules, natRule{Name: r.Name, Proto: proto, HostIP: r.HostIP, HostPort: r.HostPort, GuestIP: r.GuestIP, GuestPort: r.GuestPort})
			}
		}
		a.Systems = append(a.Systems, s)
	}
	return a, nil
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return strings.TrimSpace(s)
}
