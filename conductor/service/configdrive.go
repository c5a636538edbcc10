package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/configdrive"
)

// buildConfigDrive builds the ISO of a config drive given as a dict (API
// 1.56+) with the node's identity, and returns it as base64(gzip(ISO)).
func buildConfigDrive(n *store.Node, dict map[string]any) (string, error) {
	raw, err := json.Marshal(dict)
	if err != nil {
		return "", fmt.Errorf("configdrive: %w", err)
	}
	in, err := configdrive.ParseInput(raw)
	if err != nil {
		return "", err
	}
	node := configdrive.Node{UUID: n.UUID}
	if n.Name != nil {
		node.Name = *n.Name
	}
	if dn, _ := n.InstanceInfo["display_name"].(string); dn != "" {
		node.Hostname = dn
	}
	d, err := configdrive.Build(in, node)
	if err != nil {
		return "", err
	}
	var iso bytes.Buffer
	if err := d.WriteISO(context.Background(), &iso); err != nil {
		return "", err
	}
	return configdrive.Encode(iso.Bytes())
}
