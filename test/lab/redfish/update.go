package redfish

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The UpdateService takes firmware images with SimpleUpdate, as BMCs do:
// the BMC downloads ImageURI and flashes it. A lab image is a text file
// whose first line is "ferric-firmware <component> <version>" (component
// bios or bmc); anything else is refused as a bad image. A BMC image takes
// effect at once (the BMC restarts); a BIOS image when the system next
// starts, as on real machines.

// FirmwareImage returns the content of a lab firmware image.
func FirmwareImage(component, version string) []byte {
	return []byte(fmt.Sprintf("ferric-firmware %s %s\n", component, version))
}

func (s *Server) updateService(w http.ResponseWriter, r *http.Request, sub string) {
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/UpdateService", "@odata.type": "#UpdateService.v1_11_0.UpdateService",
			"Id": "UpdateService", "Name": "Update Service", "ServiceEnabled": true,
			"Actions": obj{"#UpdateService.SimpleUpdate": obj{
				"target": root + "/UpdateService/Actions/UpdateService.SimpleUpdate",
				"TransferProtocol@Redfish.AllowableValues": []string{"HTTP", "HTTPS"}}}})
	case sub == "Actions/UpdateService.SimpleUpdate" && r.Method == http.MethodPost:
		s.simpleUpdate(w, r)
	default:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) simpleUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ImageURI string
		Targets  []string
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ImageURI == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "SimpleUpdate needs ImageURI")
		return
	}
	sys := s.systems[0]
	for _, t := range body.Targets {
		id := t[strings.LastIndexByte(t, '/')+1:]
		if x, ok := s.byID[id]; ok {
			sys = x
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, body.ImageURI, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueFormatError", err.Error())
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueFormatError", "cannot download "+body.ImageURI+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	f := strings.Fields(line)
	if resp.StatusCode != http.StatusOK || len(f) != 3 || f[0] != "ferric-firmware" || (f[1] != "bios" && f[1] != "bmc") {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueFormatError",
			fmt.Sprintf("%s (HTTP %d) is not a firmware image for this system", body.ImageURI, resp.StatusCode))
		return
	}
	sys.mu.Lock()
	if f[1] == "bmc" {
		sys.bmcVersion = f[2]
	} else {
		sys.pendingBIOSVersion = f[2]
	}
	sys.mu.Unlock()
	s.log.Info("redfish: firmware image accepted", "system", sys.id, "component", f[1], "version", f[2])
	w.WriteHeader(http.StatusNoContent)
}
