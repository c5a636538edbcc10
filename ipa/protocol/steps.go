package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
)

// StepKind is deploy, clean or service: it names the extension
// ("deploy.get_deploy_steps") and the JSON keys of step results.
type StepKind string

// Step kinds.
const (
	KindDeploy  StepKind = "deploy"
	KindClean   StepKind = "clean"
	KindService StepKind = "service"
)

// Step is one deploy/clean/service step as listed by get_*_steps and sent
// back by execute_*_step.
type Step struct {
	Step            string                     `json:"step"`
	Interface       string                     `json:"interface"`
	Priority        int                        `json:"priority"`
	RebootRequested bool                       `json:"reboot_requested"`
	Abortable       *bool                      `json:"abortable,omitempty"`
	RequiresRamdisk *bool                      `json:"requires_ramdisk,omitempty"`
	Argsinfo        map[string]ArgInfo         `json:"argsinfo,omitempty"`
	Args            map[string]json.RawMessage `json:"args,omitempty"`
}

// ArgInfo documents a step argument.
type ArgInfo struct {
	Description string `json:"description"`
	Required    bool   `json:"required"`
}

// HardwareManagerVersion maps hardware manager names to versions; echoed by
// the conductor as deploy_version / clean_version.
type HardwareManagerVersion map[string]string

// GetStepsParams are the params of *.get_*_steps (node and ports as Ironic
// serialises them; the agent only reads what it needs).
type GetStepsParams struct {
	Node  json.RawMessage `json:"node,omitempty"`
	Ports json.RawMessage `json:"ports,omitempty"`
}

// GetStepsResult is the command_result of get_{kind}_steps: the steps keyed
// by hardware manager under "{kind}_steps", plus hardware_manager_version.
type GetStepsResult struct {
	Kind                   StepKind
	Steps                  map[string][]Step
	HardwareManagerVersion HardwareManagerVersion
}

// MarshalJSON writes {"<kind>_steps": {...}, "hardware_manager_version": {...}}.
func (r GetStepsResult) MarshalJSON() ([]byte, error) {
	steps := r.Steps
	if steps == nil {
		steps = map[string][]Step{}
	}
	return json.Marshal(map[string]any{
		string(r.Kind) + "_steps":  steps,
		"hardware_manager_version": r.HardwareManagerVersion,
	})
}

// UnmarshalJSON reads any of deploy_steps, clean_steps, service_steps.
func (r *GetStepsResult) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("protocol: steps result: %w", err)
	}
	*r = GetStepsResult{}
	for k, v := range m {
		if k == "hardware_manager_version" {
			if err := json.Unmarshal(v, &r.HardwareManagerVersion); err != nil {
				return fmt.Errorf("protocol: hardware_manager_version: %w", err)
			}
			continue
		}
		if kind, ok := strings.CutSuffix(k, "_steps"); ok {
			r.Kind = StepKind(kind)
			if err := json.Unmarshal(v, &r.Steps); err != nil {
				return fmt.Errorf("protocol: %s: %w", k, err)
			}
		}
	}
	return nil
}

// ExecuteStepParams are the params of *.execute_*_step. Version holds
// deploy_version / clean_version / service_version, whichever was sent.
type ExecuteStepParams struct {
	Step    Step
	Node    json.RawMessage
	Ports   json.RawMessage
	Version HardwareManagerVersion
	Kind    StepKind
}

// MarshalJSON writes the shape Ironic sends.
func (p ExecuteStepParams) MarshalJSON() ([]byte, error) {
	m := map[string]any{"step": p.Step}
	if p.Node != nil {
		m["node"] = p.Node
	}
	if p.Ports != nil {
		m["ports"] = p.Ports
	}
	if p.Version != nil {
		m[string(p.Kind)+"_version"] = p.Version
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads step, node, ports and any *_version key.
func (p *ExecuteStepParams) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("protocol: execute step params: %w", err)
	}
	*p = ExecuteStepParams{Node: m["node"], Ports: m["ports"]}
	raw, ok := m["step"]
	if !ok {
		return fmt.Errorf("protocol: execute step params: no \"step\"")
	}
	if err := json.Unmarshal(raw, &p.Step); err != nil {
		return fmt.Errorf("protocol: step: %w", err)
	}
	for k, v := range m {
		if kind, ok := strings.CutSuffix(k, "_version"); ok && k != "hardware_manager_version" {
			p.Kind = StepKind(kind)
			if string(v) != "null" {
				if err := json.Unmarshal(v, &p.Version); err != nil {
					return fmt.Errorf("protocol: %s: %w", k, err)
				}
			}
		}
	}
	return nil
}

// ExecuteStepResult is the command_result of a finished execute_{kind}_step:
// {"<kind>_result": Result, "<kind>_step": Step}. Ironic matches Step
// (interface + step) against the node's current step.
type ExecuteStepResult struct {
	Kind   StepKind
	Step   Step
	Result json.RawMessage
}

// MarshalJSON writes {"<kind>_result": ..., "<kind>_step": ...}.
func (r ExecuteStepResult) MarshalJSON() ([]byte, error) {
	res := r.Result
	if res == nil {
		res = json.RawMessage("null")
	}
	return json.Marshal(map[string]any{
		string(r.Kind) + "_result": res,
		string(r.Kind) + "_step":   r.Step,
	})
}

// UnmarshalJSON reads the *_result and *_step keys.
func (r *ExecuteStepResult) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("protocol: execute step result: %w", err)
	}
	*r = ExecuteStepResult{}
	for k, v := range m {
		if kind, ok := strings.CutSuffix(k, "_step"); ok {
			r.Kind = StepKind(kind)
			if err := json.Unmarshal(v, &r.Step); err != nil {
				return fmt.Errorf("protocol: %s: %w", k, err)
			}
		} else if _, ok := strings.CutSuffix(k, "_result"); ok {
			r.Result = v
		}
	}
	return nil
}

// WriteImageArgs are the args of the in-band deploy step write_image, and
// the params of standby.prepare_image / standby.cache_image.
type WriteImageArgs struct {
	ImageInfo   ImageInfo `json:"image_info"`
	Configdrive string    `json:"configdrive,omitempty"`
}

// ImageInfo describes the image to write (built by the conductor from
// instance_info).
type ImageInfo struct {
	ID   string   `json:"id"`
	URLs []string `json:"urls"`
	// Checksum is the legacy checksum: hex md5/sha256/sha512 (algorithm
	// inferred from length) or the http(s) URL of a checksums file.
	Checksum string `json:"checksum,omitempty"`
	// OSHashAlgo and OSHashValue are preferred over Checksum.
	OSHashAlgo      string `json:"os_hash_algo,omitempty"`
	OSHashValue     string `json:"os_hash_value,omitempty"`
	DiskFormat      string `json:"disk_format,omitempty"`
	ContainerFormat string `json:"container_format,omitempty"`
	StreamRawImages bool   `json:"stream_raw_images,omitempty"`
	// ImageType "partition" selects a partition image; anything else is a
	// whole-disk image.
	ImageType   string `json:"image_type,omitempty"`
	NodeUUID    string `json:"node_uuid,omitempty"`
	Configdrive string `json:"configdrive,omitempty"`

	RootMB            int64  `json:"root_mb,omitempty"`
	SwapMB            int64  `json:"swap_mb,omitempty"`
	EphemeralMB       int64  `json:"ephemeral_mb,omitempty"`
	EphemeralFormat   string `json:"ephemeral_format,omitempty"`
	PreserveEphemeral bool   `json:"preserve_ephemeral,omitempty"`
	DeployBootMode    string `json:"deploy_boot_mode,omitempty"`
	BootOption        string `json:"boot_option,omitempty"`
	DiskLabel         string `json:"disk_label,omitempty"`

	Proxies map[string]string `json:"proxies,omitempty"`
	NoProxy string            `json:"no_proxy,omitempty"`
	// ImageRequestAuthorization is base64 of a full Authorization header.
	ImageRequestAuthorization string `json:"image_request_authorization,omitempty"`
	ImageServerAuthStrategy   string `json:"image_server_auth_strategy,omitempty"`
	ImageServerUser           string `json:"image_server_user,omitempty"`
	ImageServerPassword       string `json:"image_server_password,omitempty"`
}

// PartitionUUIDs is the command_result of standby.get_partition_uuids; all
// keys are omitted before an image was written. For whole-disk images only
// RootUUID is set (MBR disk identifier "0x…" or the GPT disk GUID).
type PartitionUUIDs struct {
	RootUUID               string            `json:"root uuid,omitempty"`
	EFISystemPartitionUUID string            `json:"efi system partition uuid,omitempty"`
	PRePBootPartitionUUID  string            `json:"PReP Boot partition uuid,omitempty"`
	Partitions             map[string]string `json:"partitions,omitempty"`
}

// InstallBootloaderParams are the params of image.install_bootloader.
type InstallBootloaderParams struct {
	RootUUID                string  `json:"root_uuid"`
	EFISystemPartUUID       *string `json:"efi_system_part_uuid"`
	PrepBootPartUUID        *string `json:"prep_boot_part_uuid"`
	TargetBootMode          string  `json:"target_boot_mode,omitempty"`
	IgnoreBootloaderFailure *bool   `json:"ignore_bootloader_failure,omitempty"`
}

// SystemLogsResult is the command_result of log.collect_system_logs.
type SystemLogsResult struct {
	// SystemLogs is base64 of a gzip-compressed tar archive.
	SystemLogs string `json:"system_logs"`
}
