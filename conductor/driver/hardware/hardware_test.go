package hardware

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/vmedia"
)

// TestInterfaces pins what the API lists for each hardware type (GET
// /v1/drivers): the enabled implementations of each kind, the default
// first, in the order Ironic lists them.
func TestInterfaces(t *testing.T) {
	want := []struct {
		name    string
		enabled map[string][]string
	}{
		{"fake-hardware", map[string][]string{
			"bios":       {"fake", "no-bios"},
			"boot":       {"fake", "ipxe", "pxe"},
			"console":    {"fake", "no-console"},
			"deploy":     {"fake", "direct", "ramdisk", "custom-agent"},
			"firmware":   {"fake", "no-firmware"},
			"inspect":    {"fake", "agent", "no-inspect"},
			"management": {"fake"},
			"network":    {"noop", "flat"},
			"power":      {"fake"},
			"raid":       {"fake", "no-raid", "agent"},
			"rescue":     {"fake", "no-rescue", "agent"},
			"storage":    {"noop", "fake"},
			"vendor":     {"fake", "no-vendor"},
		}},
		{"ipmi", map[string][]string{
			"bios":       {"no-bios"},
			"boot":       {"ipxe", "pxe"},
			"console":    {"no-console", "ipmitool-socat"},
			"deploy":     {"direct", "fake", "ramdisk", "custom-agent"},
			"firmware":   {"no-firmware"},
			"inspect":    {"agent", "no-inspect"},
			"management": {"ipmitool"},
			"network":    {"noop", "flat"},
			"power":      {"ipmitool"},
			"raid":       {"no-raid", "agent"},
			"rescue":     {"no-rescue", "agent"},
			"storage":    {"noop"},
			"vendor":     {"ipmitool", "no-vendor"},
		}},
		{"redfish", map[string][]string{
			"bios":       {"redfish", "no-bios"},
			"boot":       {"ipxe", "pxe"},
			"console":    {"no-console"},
			"deploy":     {"direct", "fake", "ramdisk", "custom-agent"},
			"firmware":   {"redfish", "no-firmware"},
			"inspect":    {"redfish", "agent", "no-inspect"},
			"management": {"redfish"},
			"network":    {"noop", "flat"},
			"power":      {"redfish"},
			"raid":       {"redfish", "no-raid", "agent"},
			"rescue":     {"no-rescue", "agent"},
			"storage":    {"noop"},
			"vendor":     {"redfish", "no-vendor"},
		}},
		{"idrac", map[string][]string{
			"bios":       {"idrac-redfish", "redfish", "no-bios"},
			"boot":       {"ipxe", "pxe"},
			"console":    {"no-console"},
			"deploy":     {"direct", "fake", "ramdisk", "custom-agent"},
			"firmware":   {"redfish", "no-firmware"},
			"inspect":    {"idrac-redfish", "agent", "no-inspect"},
			"management": {"idrac-redfish"},
			"network":    {"noop", "flat"},
			"power":      {"idrac-redfish", "redfish"},
			"raid":       {"idrac-redfish", "no-raid", "agent"},
			"rescue":     {"no-rescue", "agent"},
			"storage":    {"noop"},
			"vendor":     {"idrac-redfish", "redfish", "no-vendor"},
		}},
		{"manual-management", map[string][]string{
			"bios":       {"no-bios"},
			"boot":       {"ipxe", "pxe"},
			"console":    {"no-console"},
			"deploy":     {"direct", "fake", "ramdisk", "custom-agent"},
			"firmware":   {"no-firmware"},
			"inspect":    {"agent", "no-inspect"},
			"management": {"noop"},
			"network":    {"noop", "flat"},
			"power":      {"fake"},
			"raid":       {"no-raid", "agent"},
			"rescue":     {"no-rescue", "agent"},
			"storage":    {"noop"},
			"vendor":     {"no-vendor"},
		}},
	}
	reg := New(Config{})
	if got := reg.Names(); len(got) != len(want) {
		t.Fatalf("Names() = %v, want %d types", got, len(want))
	}
	for i, w := range want {
		t.Run(w.name, func(t *testing.T) {
			h := reg.Types()[i]
			if h.Name != w.name {
				t.Fatalf("type %d is %s, want %s", i, h.Name, w.name)
			}
			got := map[string][]string{}
			for kind, iface := range h.Interfaces {
				got[kind] = iface.Enabled
				if iface.Default != iface.Enabled[0] {
					t.Errorf("%s: default %s, want the first enabled %s", kind, iface.Default, iface.Enabled[0])
				}
			}
			if diff := cmp.Diff(w.enabled, got); diff != "" {
				t.Errorf("enabled interfaces (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCapabilities checks that each implementation offers the
// capabilities its kind is asked for, and the fake and no-* ones do not
// offer those of a real machine.
func TestCapabilities(t *testing.T) {
	reg := New(Config{})
	obj := func(hw, kind, impl string) any {
		t.Helper()
		o, ok := reg.Object(hw, kind, impl)
		if !ok {
			t.Fatalf("Object(%s, %s, %s) not enabled", hw, kind, impl)
		}
		return o
	}
	is := func(name string, o any, ok bool, want bool) {
		t.Helper()
		if ok != want {
			t.Errorf("%s (%T): capability %v, want %v", name, o, ok, want)
		}
	}
	for _, h := range reg.Types() {
		for kind, iface := range h.Interfaces {
			for _, impl := range iface.Enabled {
				o := obj(h.Name, kind, impl)
				name := h.Name + " " + kind + " " + impl
				if o == nil {
					continue
				}
				switch kind {
				case "power":
					_, ok := o.(driver.Power)
					is(name+" Power", o, ok, true)
				case "management":
					_, ok := o.(driver.Management)
					is(name+" Management", o, ok, true)
				case "boot":
					_, ok := o.(driver.Boot)
					is(name+" Boot", o, ok, true)
				case "deploy":
					d, ok := o.(driver.Deploy)
					is(name+" Deploy", o, ok, true)
					if ok && d.UsesAgent() != (impl != "fake") {
						t.Errorf("%s: UsesAgent() = %v", name, d.UsesAgent())
					}
				}
			}
		}
	}
	checks := []struct {
		hw, kind, impl string
		cap            func(any) bool
		want           bool
	}{
		{"redfish", "bios", "redfish", func(o any) bool { _, ok := o.(driver.BIOS); return ok }, true},
		{"redfish", "firmware", "redfish", func(o any) bool { _, ok := o.(driver.FirmwareUpdater); return ok }, true},
		{"redfish", "management", "redfish", func(o any) bool { _, ok := o.(driver.FirmwareUpdater); return ok }, true},
		{"redfish", "management", "redfish", func(o any) bool { _, ok := o.(driver.BootModes); return ok }, true},
		{"redfish", "inspect", "redfish", func(o any) bool { _, ok := o.(driver.Inspector); return ok }, true},
		{"redfish", "inspect", "agent", func(o any) bool { _, ok := o.(driver.RamdiskInspector); return ok }, true},
		{"redfish", "vendor", "redfish", func(o any) bool { _, ok := o.(driver.Vendor); return ok }, true},
		{"redfish", "raid", "redfish", func(o any) bool { _, ok := o.(driver.RAIDController); return ok }, true},
		{"idrac", "raid", "idrac-redfish", func(o any) bool { _, ok := o.(driver.RAIDController); return ok }, true},
		{"idrac", "management", "idrac-redfish", func(o any) bool { _, ok := o.(driver.BootModes); return ok }, true},
		{"redfish", "raid", "agent", func(o any) bool { _, ok := o.(driver.RAIDController); return ok }, false},
		{"ipmi", "vendor", "ipmitool", func(o any) bool { _, ok := o.(driver.Vendor); return ok }, true},
		{"ipmi", "management", "ipmitool", func(o any) bool { _, ok := o.(driver.FirmwareUpdater); return ok }, false},
		{"ipmi", "management", "ipmitool", func(o any) bool { _, ok := o.(driver.NMIInjector); return ok }, true},
		{"fake-hardware", "management", "fake", func(o any) bool { _, ok := o.(driver.NMIInjector); return ok }, true},
		{"manual-management", "management", "noop", func(o any) bool { _, ok := o.(driver.NMIInjector); return ok }, false},
		{"fake-hardware", "bios", "fake", func(o any) bool { _, ok := o.(driver.BIOS); return ok }, false},
		{"fake-hardware", "bios", "fake", func(o any) bool { _, ok := o.(driver.Fake); return ok }, true},
		{"fake-hardware", "inspect", "fake", func(o any) bool { _, ok := o.(driver.Fake); return ok }, true},
		{"fake-hardware", "power", "fake", func(o any) bool { _, ok := o.(driver.Fake); return ok }, true},
		{"ipmi", "power", "ipmitool", func(o any) bool { _, ok := o.(driver.Fake); return ok }, false},
		{"fake-hardware", "bios", "no-bios", func(o any) bool { return o != nil }, false},
		{"fake-hardware", "network", "noop", func(o any) bool { return o != nil }, true},
	}
	for _, c := range checks {
		o := obj(c.hw, c.kind, c.impl)
		is(c.hw+" "+c.kind+" "+c.impl, o, c.cap(o), c.want)
	}
	// One object per BMC driver, whichever hardware type names it.
	if obj("redfish", "power", "redfish") != obj("redfish", "bios", "redfish") {
		t.Error("redfish power and bios are different objects")
	}
}

// TestIronicDefaults checks the defaults a node gets when it is enrolled
// without interfaces against Ironic's: the first of the hardware type's
// supported_<kind>_interfaces (ironic/drivers/ipmi.py, redfish.py,
// drac.py) that the conductor enables, with every implementation enabled
// as metal3's Ironic (ironic-image) enables them.
func TestIronicDefaults(t *testing.T) {
	want := map[string]map[string]string{
		"ipmi": {"bios": "no-bios", "firmware": "no-firmware", "inspect": "agent", "raid": "no-raid",
			"vendor": "ipmitool", "management": "ipmitool", "power": "ipmitool", "boot": "ipxe", "deploy": "direct"},
		"redfish": {"bios": "redfish", "firmware": "redfish", "inspect": "redfish", "raid": "redfish",
			"vendor": "redfish", "management": "redfish", "power": "redfish", "boot": "ipxe", "deploy": "direct"},
		"idrac": {"bios": "idrac-redfish", "firmware": "redfish", "inspect": "idrac-redfish", "raid": "idrac-redfish",
			"vendor": "idrac-redfish", "management": "idrac-redfish", "power": "idrac-redfish", "boot": "ipxe", "deploy": "direct"},
	}
	reg := New(Config{})
	for hw, kinds := range want {
		h := reg.Lookup(hw)
		if h == nil {
			t.Errorf("hardware type %s missing", hw)
			continue
		}
		for kind, def := range kinds {
			if got := h.Interfaces[kind].Default; got != def {
				t.Errorf("%s: default %s interface = %q, want Ironic's %q", hw, kind, got, def)
			}
		}
	}
}

// TestVirtualMediaBoot checks that the redfish hardware type offers
// redfish-virtual-media only when the conductor gives it one, as a ramdisk
// booter that inserts through the Redfish driver, and not the default.
func TestVirtualMediaBoot(t *testing.T) {
	if got := New(Config{}).Lookup("redfish").Interfaces["boot"].Enabled; slices.Contains(got, "redfish-virtual-media") {
		t.Errorf("without a virtual media boot, redfish boot interfaces %v", got)
	}
	b, err := vmedia.New(vmedia.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg := New(Config{VirtualMediaBoot: b})
	boot := reg.Lookup("redfish").Interfaces["boot"]
	if boot.Default != "ipxe" || !slices.Contains(boot.Enabled, "redfish-virtual-media") {
		t.Errorf("redfish boot interfaces %v (default %s)", boot.Enabled, boot.Default)
	}
	o, _ := reg.Object("redfish", "boot", "redfish-virtual-media")
	if _, ok := o.(driver.RamdiskBooter); !ok || o != any(b) {
		t.Errorf("redfish-virtual-media object %T, want the Boot given", o)
	}
	if got := reg.Lookup("ipmi").Interfaces["boot"].Enabled; slices.Contains(got, "redfish-virtual-media") {
		t.Errorf("ipmi boot interfaces %v", got)
	}
	if _, ok := reg.Lookup("redfish").Interfaces["management"].Object("redfish"); !ok {
		t.Fatal("no redfish management")
	}
	mg, _ := reg.Object("redfish", "management", "redfish")
	if _, ok := mg.(driver.VirtualMedia); !ok {
		t.Errorf("redfish management %T is no driver.VirtualMedia", mg)
	}
}

// TestRamdiskBootInterfaces checks which boot interfaces can boot a
// ramdisk deploy's instance (Ironic's ramdisk_boot capability): the network
// boots, redfish-virtual-media and redfish-https (listed after it, as
// Ironic's redfish type does, when the conductor gives one), but not fake;
// and that the ramdisk and custom-agent deploys are what they say.
func TestRamdiskBootInterfaces(t *testing.T) {
	b, err := vmedia.New(vmedia.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg := New(Config{VirtualMediaBoot: b, HTTPSBoot: vmedia.NewHTTPS(b)})
	if got, want := reg.Lookup("redfish").Interfaces["boot"].Enabled, []string{"ipxe", "pxe", "redfish-virtual-media", "redfish-https"}; !slices.Equal(got, want) {
		t.Errorf("redfish boot interfaces %v, want %v", got, want)
	}
	for _, tc := range []struct {
		hw, impl string
		want     bool
	}{
		{"redfish", "ipxe", true}, {"redfish", "pxe", true}, {"redfish", "redfish-virtual-media", true},
		{"redfish", "redfish-https", true}, {"fake-hardware", "fake", false}, {"ipmi", "ipxe", true},
	} {
		o, _ := reg.Object(tc.hw, "boot", tc.impl)
		if _, ok := o.(driver.InstanceBooter); ok != tc.want {
			t.Errorf("%s boot %s: InstanceBooter %v, want %v", tc.hw, tc.impl, ok, tc.want)
		}
	}
	o, _ := reg.Object("redfish", "boot", "redfish-https")
	if _, ok := o.(driver.RamdiskBooter); !ok {
		t.Errorf("redfish-https %T is no RamdiskBooter", o)
	}
	mg, _ := reg.Object("redfish", "management", "redfish")
	if _, ok := mg.(driver.HTTPBooter); !ok {
		t.Errorf("redfish management %T is no HTTPBooter", mg)
	}
	for _, hw := range []string{"fake-hardware", "ipmi", "redfish", "idrac", "manual-management"} {
		rd, _ := reg.Object(hw, "deploy", "ramdisk")
		if _, ok := rd.(driver.RamdiskDeploy); !ok {
			t.Errorf("%s deploy ramdisk %T is no RamdiskDeploy", hw, rd)
		}
		ca, _ := reg.Object(hw, "deploy", "custom-agent")
		if _, ok := ca.(driver.CustomAgentDeploy); !ok {
			t.Errorf("%s deploy custom-agent %T is no CustomAgentDeploy", hw, ca)
		}
		if d, _ := reg.Object(hw, "deploy", "direct"); d != nil {
			if _, ok := d.(driver.CustomAgentDeploy); ok {
				t.Errorf("%s direct is a custom-agent deploy", hw)
			}
		}
	}
}
