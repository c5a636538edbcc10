package bmc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	bmclib "github.com/bmc-toolbox/bmclib/v2"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Redfish is Ironic's redfish hardware type (power and management interfaces)
// through bmclib's gofish provider.
//
// Authentication is HTTP basic by default (no Redfish sessions to leak);
// redfish_auth_type session or auto uses a session that is deleted after each
// operation. bmclib picks a system by its Name, so when redfish_system_id is
// set the driver reads that system once to learn its Name and caches it.
type Redfish struct {
	core
	names sync.Map // endpoint+system path -> system Name
}

// NewRedfish returns the redfish power and management interfaces.
func NewRedfish(cfg Config) *Redfish {
	d := &Redfish{}
	d.cfg = cfg.withDefaults()
	d.hw = "redfish"
	d.parse = d.target
	return d
}

var (
	_ driver.Power      = (*Redfish)(nil)
	_ driver.Management = (*Redfish)(nil)
)

func (d *Redfish) target(n *driver.Node) (target, error) {
	info, err := parseRedfishInfo(n)
	if err != nil {
		return target{}, err
	}
	host := info.scheme + "://" + info.host
	if strings.Contains(info.host, ":") {
		host = info.scheme + "://[" + info.host + "]"
	}
	opts := []bmclib.Option{
		bmclib.WithRedfishPort(strconv.Itoa(info.port)),
		bmclib.WithRedfishUseBasicAuth(!info.session),
	}
	if info.scheme == "https" && info.verify {
		opts = append(opts, bmclib.WithSecureTLS(info.caPool))
	}
	t := target{
		addr:     info.addr(),
		host:     host,
		user:     info.username,
		pass:     info.password,
		provider: ProviderGofish,
		opts:     opts,
		reboot:   rebootRestart,
	}
	if info.systemID != "" {
		t.prepare = func(ctx context.Context) ([]bmclib.Option, error) {
			name, err := d.systemName(ctx, info)
			if err != nil {
				return nil, err
			}
			return []bmclib.Option{bmclib.WithRedfishSystemName(name)}, nil
		}
	}
	return t, nil
}

// systemName reads the Name of the system at info.systemID.
func (d *Redfish) systemName(ctx context.Context, info redfishInfo) (string, error) {
	key := info.endpoint() + info.systemID
	if v, ok := d.names.Load(key); ok {
		return v.(string), nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: !info.verify, RootCAs: info.caPool}} //nolint:gosec // redfish_verify_ca=false asks for it
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, info.endpoint()+info.systemID, nil)
	if err != nil {
		return "", fmt.Errorf("bmc: %s: %w", info.addr(), err)
	}
	req.SetBasicAuth(info.username, info.password)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return "", fmt.Errorf("bmc: %s did not answer within %s (read system %s): %w", info.addr(), d.cfg.CallTimeout, info.systemID, ErrNoAnswer)
		}
		return "", fmt.Errorf("bmc: %s: read system %s: %w", info.addr(), info.systemID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bmc: %s: read system %s (%s): %s; check %s", info.addr(), info.systemID, KeyRedfishSystemID, resp.Status, KeyRedfishSystemID)
	}
	var sys struct{ Name, ID string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sys); err != nil {
		return "", fmt.Errorf("bmc: %s: read system %s: %w", info.addr(), info.systemID, err)
	}
	if sys.Name == "" {
		return "", fmt.Errorf("bmc: %s: system %s has no Name, which bmclib needs to select it", info.addr(), info.systemID)
	}
	d.names.Store(key, sys.Name)
	return sys.Name, nil
}
