package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// personas are callers as Keystone issues their tokens: implied roles
// included (admin implies manager's member and reader, and so on).
func personas() map[string]*Creds {
	const owner, lessee, other = "p-owner", "p-lessee", "p-other"
	roles := map[string][]string{
		"admin":   {"admin", "member", "reader"},
		"manager": {"manager", "member", "reader"},
		"member":  {"member", "reader"},
		"reader":  {"reader"},
		"service": {"service"},
	}
	out := map[string]*Creds{}
	for r, rs := range roles {
		out["system-"+r] = &Creds{UserID: "u", System: true, Roles: rs}
		for _, p := range []string{owner, lessee, other} {
			out[p+"-"+r] = &Creds{UserID: "u", ProjectID: p, ProjectName: p + "-name", ProjectDomainID: "default", Roles: rs}
		}
	}
	out["domain-admin"] = &Creds{UserID: "u", DomainID: "d", Roles: roles["admin"]}
	out["unscoped-admin"] = &Creds{UserID: "u", Roles: roles["admin"]}
	return out
}

func targets() map[string]Target {
	o, l := "p-owner", "p-lessee"
	return map[string]Target{
		"node-owned-leased": NodeTarget(&o, &l),
		"node-unowned":      NodeTarget(nil, nil),
		"alloc-owned":       AllocationTarget(&o),
		"none":              {},
	}
}

// pyCreds is oslo.context's to_policy_values of the caller.
func pyCreds(c *Creds) map[string]any {
	or := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	m := map[string]any{"user_id": or(c.UserID), "user_domain_id": or(c.UserDomainID),
		"project_id": or(c.ProjectID), "project_name": or(c.ProjectName),
		"project_domain_id": or(c.ProjectDomainID), "domain_id": or(c.DomainID),
		"system_scope": nil, "roles": c.Roles, "is_admin_project": true}
	if c.System {
		m["system_scope"] = "all"
	}
	if c.Roles == nil {
		m["roles"] = []string{}
	}
	return m
}

// TestDefaultsAgreeWithIronic decides every rule for every persona and
// target with this package and with oslo.policy running Ironic's own
// registered defaults (Debian's python3-ironic), and requires the same
// answers; then the same under a policy file.
func TestDefaultsAgreeWithIronic(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import ironic.common.policy, oslo_policy").Run(); err != nil {
		t.Skip("needs Debian's python3-ironic (apt-get install python3-ironic, see .ci/deps.sh)")
	}
	overrides := map[string]string{
		"baremetal:node:get":                  "role:admin or (role:reader and project_id:%(node.owner)s)",
		"baremetal:node:set_provision_state":  "rule:is_node_owner and not role:reader or role:admin and system_scope:all",
		"baremetal:allocation:create":         "@",
		"baremetal:node:delete":               "!",
		"baremetal:node:update":               "project_name:p-owner-name or user_id:u and role:member",
		"baremetal:node:list_all":             "(role:service) or (role:ADMIN and 'all':%(system_scope)s)",
		"ferric:custom":                       "rule:baremetal:node:get and not rule:baremetal:node:delete",
		"baremetal:node:update:instance_uuid": "",
	}
	for _, tc := range []struct {
		name string
		over map[string]string
	}{{"defaults", nil}, {"policy-file", overrides}} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "policy.yaml")
			raw, _ := json.Marshal(tc.over)
			if tc.over == nil {
				raw = []byte("{}")
			}
			if err := os.WriteFile(file, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			type pcase struct {
				Rule   string         `json:"rule"`
				Creds  map[string]any `json:"creds"`
				Target Target         `json:"target"`
			}
			var cases []pcase
			var want []bool
			var names []string
			rules := Defaults()
			if tc.over != nil {
				rules = append(rules, DefaultRule{Name: "ferric:custom"})
			}
			for pn, c := range personas() {
				for tn, tg := range targets() {
					for _, r := range rules {
						cases = append(cases, pcase{r.Name, pyCreds(c), tg})
						want = append(want, e.Check(r.Name, c, tg))
						names = append(names, r.Name+" "+pn+" "+tn)
					}
				}
			}
			in, _ := json.Marshal(cases)
			cmd := exec.Command(py, "testdata/oslo_oracle.py", file)
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("oracle: %v: %s", err, stderr.Bytes())
			}
			var got []bool
			if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
				t.Fatalf("oracle answered %d of %d cases (%v): %.300s", len(got), len(cases), err, out)
			}
			bad := 0
			for i := range cases {
				if got[i] != want[i] {
					bad++
					if bad <= 20 {
						t.Errorf("%s: ferric %v, oslo.policy with Ironic's rules %v", names[i], want[i], got[i])
					}
				}
			}
			t.Logf("%d decisions compared, %d differ", len(cases), bad)
		})
	}
}
