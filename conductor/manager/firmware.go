package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/checksum"
)

// Firmware updates, as Ironic's redfish interfaces run them: the BMC
// flashes each image through its UpdateService. Two steps name them:
//
//   - firmware.update (firmware_interface redfish; clean, deploy and
//     service step): settings [{"component": "bios"|"bmc", "url": ...,
//     "wait": seconds}];
//   - management.update_firmware (management_interface redfish; clean and
//     service step, the older form Ironic still offers): firmware_images
//     [{"url": ..., "checksum": ..., "wait": seconds, "source": "http"}].
//     The conductor downloads each image and checks its checksum before
//     the BMC is given the URL.
//
// A BIOS image (or any management.update_firmware image, whose component
// is not named) takes effect when the machine restarts: a service step
// reboots the machine into its instance, a clean or deploy step into the
// ramdisk, and the step then resumes with the new agent.

// firmwareUpdate is one image of a firmware update step.
type firmwareUpdate struct {
	Component string // bios, bmc, or "" (not named: management.update_firmware)
	URL       string
	Checksum  string // management.update_firmware only
	Wait      time.Duration
}

// restarts reports whether the image takes effect at the next start.
func (f firmwareUpdate) restarts() bool { return f.Component != "bmc" }

// isFirmwareUpdate reports whether st is firmware.update or
// management.update_firmware.
func isFirmwareUpdate(st map[string]any) bool {
	return isFirmwareInterfaceUpdate(st) || st["interface"] == "management" && st["step"] == "update_firmware"
}

// isFirmwareInterfaceUpdate reports whether st is firmware.update.
func isFirmwareInterfaceUpdate(st map[string]any) bool {
	return st["interface"] == "firmware" && st["step"] == "update"
}

// firmwareStepOffered reports whether the node's interfaces offer the
// firmware update step st.
func (m *Manager) firmwareStepOffered(n *store.Node, st map[string]any) bool {
	_, err := m.firmwareUpdater(n, st)
	return err == nil
}

// firmwareImages reads the images of a firmware update step.
func firmwareImages(st map[string]any) ([]firmwareUpdate, error) {
	args, _ := st["args"].(map[string]any)
	if isFirmwareInterfaceUpdate(st) {
		return firmwareSettingsArg(args)
	}
	return managementFirmwareArg(args)
}

// firmwareSettingsArg reads firmware.update's settings argument.
func firmwareSettingsArg(args map[string]any) ([]firmwareUpdate, error) {
	list, ok := args["settings"].([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("firmware.update needs settings: a list of {\"component\": \"bios\" or \"bmc\", \"url\": ...}")
	}
	var out []firmwareUpdate
	for _, item := range list {
		m, _ := item.(map[string]any)
		c, _ := m["component"].(string)
		u, _ := m["url"].(string)
		if (c != "bios" && c != "bmc") || !isHTTPURL(u) {
			return nil, fmt.Errorf("firmware.update settings: %v: want a component bios or bmc and an http(s) url", item)
		}
		wait, err := waitArg(m)
		if err != nil {
			return nil, fmt.Errorf("firmware.update settings: %v: %w", item, err)
		}
		out = append(out, firmwareUpdate{Component: c, URL: u, Wait: wait})
	}
	return out, nil
}

// managementFirmwareArg reads management.update_firmware's firmware_images
// argument, with the rules of Ironic's schema for it. Images are given to
// the BMC by their http(s) URL: the sources that make Ironic stage the file
// itself (local, swift) are refused.
func managementFirmwareArg(args map[string]any) ([]firmwareUpdate, error) {
	list, ok := args["firmware_images"].([]any)
	invalid := func(why string) error {
		b, _ := json.Marshal(args["firmware_images"])
		return userErr(ErrInvalidInput, "Invalid firmware update %s. Errors: %s", b, why)
	}
	if !ok {
		return nil, invalid("firmware_images is required: a list of {\"url\": ..., \"checksum\": ...}")
	}
	var out []firmwareUpdate
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, invalid(fmt.Sprintf("%v is not of type 'object'", item))
		}
		for k := range m {
			switch k {
			case "url", "checksum", "wait", "source":
			default:
				return nil, invalid(fmt.Sprintf("additional property %q is not allowed", k))
			}
		}
		u, _ := m["url"].(string)
		sum, _ := m["checksum"].(string)
		switch {
		case u == "":
			return nil, invalid("'url' is a required property, a non-empty string")
		case sum == "":
			return nil, invalid("'checksum' is a required property, a non-empty string")
		case !isHTTPURL(u):
			return nil, invalid(fmt.Sprintf("url %q: only http(s) URLs are served to the BMC here", u))
		}
		if src, ok := m["source"]; ok && src != "http" {
			return nil, invalid(fmt.Sprintf("source %v: only http is supported here (the BMC downloads the image from its URL)", src))
		}
		if _, err := checksum.ParseValue(sum); err != nil {
			return nil, invalid(err.Error())
		}
		wait, err := waitArg(m)
		if err != nil {
			return nil, invalid(err.Error())
		}
		out = append(out, firmwareUpdate{URL: u, Checksum: sum, Wait: wait})
	}
	if len(out) == 0 {
		return nil, invalid("no firmware images")
	}
	return out, nil
}

// waitArg reads an image's optional wait (whole seconds, at least 1).
func waitArg(m map[string]any) (time.Duration, error) {
	raw, ok := m["wait"]
	if !ok {
		return 0, nil
	}
	f, isNum := raw.(float64)
	if !isNum || f < 1 || f != float64(int64(f)) {
		return 0, fmt.Errorf("wait %v: want a whole number of seconds, at least 1", raw)
	}
	return time.Duration(f) * time.Second, nil
}

func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// firmwareUpdater returns the updater behind the interface that offers
// the step st on node n.
func (m *Manager) firmwareUpdater(n *store.Node, st map[string]any) (driver.FirmwareUpdater, error) {
	iface := "firmware"
	if !isFirmwareInterfaceUpdate(st) {
		iface = "management"
	}
	if up, ok := m.firmwareUpdaterOf(n, iface); ok && isFirmwareUpdate(st) {
		return up, nil
	}
	return nil, fmt.Errorf("the %s interface %s of node %s does not update firmware", iface, n.Interfaces[iface], n.UUID)
}

// updatesFirmware reports whether the node's firmware interface flashes
// images (firmware.update is then one of its clean, deploy and service
// steps).
func (m *Manager) updatesFirmware(n *store.Node) bool {
	_, err := m.firmwareUpdater(n, firmwareUpdateStep)
	return err == nil
}

// firmwareUpdateStep names firmware.update.
var firmwareUpdateStep = map[string]any{"interface": "firmware", "step": "update"}

// flashFirmware has the BMC flash each image of a firmware update step in
// turn, calling afterRestartImage (when set) after each image that takes
// effect at the next start. restart reports that one was flashed.
func (m *Manager) flashFirmware(ctx context.Context, uuid string, st map[string]any, afterRestartImage func(*store.Node) error) (restart bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	up, err := m.firmwareUpdater(n, st)
	if err != nil {
		return false, err
	}
	images, err := firmwareImages(st)
	if err != nil {
		return false, err
	}
	dn := driverNode(n)
	for _, img := range images {
		if img.Checksum != "" {
			if err := checkFirmwareImage(ctx, img); err != nil {
				return restart, err
			}
		}
		m.log.Info("manager: firmware update", "node", uuid, "component", img.Component, "url", img.URL)
		if err := up.UpdateFirmware(ctx, dn, img.URL); err != nil {
			return restart, err
		}
		if img.Wait > 0 {
			m.log.Info("manager: waiting after the firmware update", "node", uuid, "seconds", img.Wait.Seconds())
			select {
			case <-time.After(img.Wait):
			case <-ctx.Done():
				return restart, ctx.Err()
			}
		}
		if img.restarts() {
			restart = true
			if afterRestartImage != nil {
				if err := afterRestartImage(n); err != nil {
					return restart, err
				}
			}
		}
	}
	return restart, nil
}

// firmwareFetchTimeout bounds the download of a firmware image whose
// checksum the conductor checks.
const firmwareFetchTimeout = 10 * time.Minute

// checkFirmwareImage downloads the image and compares its digest with the
// checksum given for it (its algorithm told by its length, or "algo:hex").
func checkFirmwareImage(ctx context.Context, img firmwareUpdate) error {
	want, err := checksum.ParseValue(img.Checksum)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, firmwareFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, img.URL, nil)
	if err != nil {
		return fmt.Errorf("firmware image %s: %w", img.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("firmware image %s: %w", img.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("firmware image %s: HTTP %d", img.URL, resp.StatusCode)
	}
	v, err := checksum.NewVerifier(want)
	if err != nil {
		return err
	}
	if _, err := io.Copy(v, resp.Body); err != nil {
		return fmt.Errorf("firmware image %s: %w", img.URL, err)
	}
	return want.Check(v.Sum(nil), "firmware image "+img.URL)
}

// firmwareStep runs a firmware update as a clean or deploy step, as
// Ironic's redfish interfaces do with the ramdisk up: the BMC flashes every
// image; when one takes effect at the next start, the machine reboots into
// the ramdisk (the step reports wait, the node waits for the new agent,
// whose heartbeat calls the step again). The firmware versions are read
// again at the end.
func (m *Manager) firmwareStep(ctx context.Context, uuid string, st map[string]any) (wait bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	if state, _ := n.DriverInternalInfo[biosStateKey].(map[string]any); state["firmware_updated"] == true {
		// Back in the ramdisk after the reboot that put the images in effect.
		if err := m.update(ctx, uuid, func(n *store.Node) error {
			delete(n.DriverInternalInfo, biosStateKey)
			return nil
		}); err != nil {
			return false, err
		}
		m.cacheFirmware(ctx, uuid)
		return false, nil
	}
	restart, err := m.flashFirmware(ctx, uuid, st, nil)
	if err != nil {
		return false, err
	}
	if !restart {
		m.cacheFirmware(ctx, uuid)
		return false, nil
	}
	return true, m.rebootForStep(ctx, uuid, map[string]any{"firmware_updated": true})
}
