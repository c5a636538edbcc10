package bmc

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// driver_info keys of the ipmi hardware type.
const (
	KeyIPMIAddress     = "ipmi_address"
	KeyIPMIPort        = "ipmi_port"
	KeyIPMIUsername    = "ipmi_username"
	KeyIPMIPassword    = "ipmi_password"
	KeyIPMICipherSuite = "ipmi_cipher_suite"
)

// driver_info keys of the redfish hardware type.
const (
	KeyRedfishAddress  = "redfish_address"
	KeyRedfishUsername = "redfish_username"
	KeyRedfishPassword = "redfish_password"
	KeyRedfishSystemID = "redfish_system_id"
	KeyRedfishVerifyCA = "redfish_verify_ca"
	KeyRedfishAuthType = "redfish_auth_type"
)

// DefaultIPMIPort is the RMCP port used when ipmi_port is not set.
const DefaultIPMIPort = 623

// ipmiInfo is the parsed driver_info of an ipmi node.
type ipmiInfo struct {
	host        string
	port        int
	username    string
	password    string
	cipherSuite string // "" lets bmclib try 3 then 17
}

func (i ipmiInfo) addr() string { return net.JoinHostPort(i.host, strconv.Itoa(i.port)) }

// redfishInfo is the parsed driver_info of a redfish node.
type redfishInfo struct {
	scheme   string // http or https
	host     string // bare host name or IP
	port     int
	username string
	password string
	systemID string // Redfish path of the system, "" when not set
	verify   bool   // verify the BMC's TLS certificate
	caPool   *x509.CertPool
	caFile   string
	session  bool // session auth instead of basic auth
}

// endpoint is the base URL of the service ("https://host:port").
func (r redfishInfo) endpoint() string {
	return r.scheme + "://" + net.JoinHostPort(r.host, strconv.Itoa(r.port))
}

func (r redfishInfo) addr() string { return r.endpoint() }

// missing returns an error naming the keys of want that info lacks (or has empty).
func missing(info map[string]any, want ...string) error {
	var miss []string
	for _, k := range want {
		if s, ok := str(info[k]); !ok || s == "" {
			miss = append(miss, k)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	sort.Strings(miss)
	return fmt.Errorf("bmc: %w: %s", driver.ErrMissingInfo, strings.Join(miss, ", "))
}

// str converts a driver_info value to a string; numbers and bools are accepted
// because JSON clients send ports as either.
func str(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return strings.TrimSpace(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case bool:
		return strconv.FormatBool(x), true
	default:
		return fmt.Sprint(x), true
	}
}

func parseIPMIInfo(n *driver.Node) (ipmiInfo, error) {
	if n == nil {
		return ipmiInfo{}, fmt.Errorf("bmc: nil node")
	}
	di := n.DriverInfo
	if err := missing(di, KeyIPMIAddress); err != nil {
		return ipmiInfo{}, err
	}
	info := ipmiInfo{port: DefaultIPMIPort}
	info.host, _ = str(di[KeyIPMIAddress])
	info.host = strings.TrimSuffix(strings.TrimPrefix(info.host, "["), "]")
	if p, ok := str(di[KeyIPMIPort]); ok && p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return ipmiInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: want a port number 1-65535", KeyIPMIPort, p)
		}
		info.port = port
	}
	info.username, _ = str(di[KeyIPMIUsername])
	if pw, ok := di[KeyIPMIPassword].(string); ok {
		info.password = pw // passwords keep their spaces
	}
	if cs, ok := str(di[KeyIPMICipherSuite]); ok && cs != "" {
		v, err := strconv.Atoi(cs)
		if err != nil || v < 0 || v > 17 {
			return ipmiInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: want a cipher suite number 0-17", KeyIPMICipherSuite, cs)
		}
		info.cipherSuite = strconv.Itoa(v)
	}
	return info, nil
}

func parseRedfishInfo(n *driver.Node) (redfishInfo, error) {
	if n == nil {
		return redfishInfo{}, fmt.Errorf("bmc: nil node")
	}
	di := n.DriverInfo
	if err := missing(di, KeyRedfishAddress); err != nil {
		return redfishInfo{}, err
	}
	info := redfishInfo{verify: true}
	raw, _ := str(di[KeyRedfishAddress])
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return redfishInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: want a URL such as https://10.0.0.5 or a host name", KeyRedfishAddress, raw)
	}
	switch u.Scheme {
	case "https":
		info.port = 443
	case "http":
		info.port = 80
	default:
		return redfishInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: scheme must be http or https", KeyRedfishAddress, raw)
	}
	if u.Path != "" && u.Path != "/" {
		return redfishInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: give the service address without a path (the system goes in %s)", KeyRedfishAddress, raw, KeyRedfishSystemID)
	}
	info.scheme, info.host = u.Scheme, u.Hostname()
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return redfishInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: bad port", KeyRedfishAddress, raw)
		}
		info.port = port
	}
	info.username, _ = str(di[KeyRedfishUsername])
	if pw, ok := di[KeyRedfishPassword].(string); ok {
		info.password = pw
	}
	if id, ok := str(di[KeyRedfishSystemID]); ok && id != "" {
		if !strings.HasPrefix(id, "/") {
			id = "/redfish/v1/Systems/" + id
		}
		info.systemID = strings.TrimSuffix(id, "/")
	}
	if err := parseVerifyCA(di[KeyRedfishVerifyCA], &info); err != nil {
		return redfishInfo{}, err
	}
	if at, ok := str(di[KeyRedfishAuthType]); ok && at != "" {
		switch strings.ToLower(at) {
		case "basic":
		case "session", "auto":
			info.session = true
		default:
			return redfishInfo{}, fmt.Errorf("bmc: invalid driver_info %s %q: want basic, session or auto", KeyRedfishAuthType, at)
		}
	}
	return info, nil
}

// parseVerifyCA reads redfish_verify_ca: a boolean (true by default, as in
// Ironic), a boolean-like string, or the path of a PEM CA bundle.
func parseVerifyCA(v any, info *redfishInfo) error {
	if v == nil {
		return nil
	}
	if b, ok := v.(bool); ok {
		info.verify = b
		return nil
	}
	s, _ := str(v)
	switch strings.ToLower(s) {
	case "", "true", "yes", "on", "1":
		info.verify = true
		return nil
	case "false", "no", "off", "0":
		info.verify = false
		return nil
	}
	pem, err := os.ReadFile(s)
	if err != nil {
		return fmt.Errorf("bmc: invalid driver_info %s %q: not a boolean and not a readable CA bundle: %w", KeyRedfishVerifyCA, s, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("bmc: invalid driver_info %s %q: no PEM certificate in the file", KeyRedfishVerifyCA, s)
	}
	info.verify, info.caPool, info.caFile = true, pool, s
	return nil
}
