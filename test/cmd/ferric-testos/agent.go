//go:build linux

package main

// The in-server agent of the test OS: what a deployed server's own
// software does with its config drive when it was built through the
// Compute servers API (conductor/compute).
//
//   - root's password: meta_data.json's admin_pass, written to /etc/shadow
//     as a SHA-512 crypt hash (the form login and sshd check);
//   - root's keys: meta_data.json's public_keys, written to
//     /root/.ssh/authorized_keys;
//   - the network: network_data.json (main.go's network);
//   - the phone-home (vendor_data2.json's ferric.phone_home: url, token,
//     poll_interval): it posts DEPLOYING, then DEPLOYED (or FAILED with the
//     reason) once the above is done, then polls the URL for actions and
//     carries out changePassword, confirming each.
//
// It prints root's shadow entry on the console, and puts it, the
// authorized keys and the metadata in its report to user_data's URL (the
// lab's tests check them there).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// phoneHome is vendor_data2.json's ferric.phone_home.
type phoneHome struct {
	URL          string `json:"url"`
	Token        string `json:"token"`
	PollInterval int    `json:"poll_interval"`
}

// phoneHomeOf reads the phone-home from vendor_data2.json (nil without).
func phoneHomeOf(vendorData string) *phoneHome {
	var vd struct {
		Ferric struct {
			PhoneHome *phoneHome `json:"phone_home"`
		} `json:"ferric"`
	}
	if json.Unmarshal([]byte(vendorData), &vd) != nil {
		return nil
	}
	ph := vd.Ferric.PhoneHome
	if ph == nil || ph.URL == "" || ph.Token == "" {
		return nil
	}
	if ph.PollInterval <= 0 {
		ph.PollInterval = 5
	}
	return ph
}

// phoneAnswer is the phone-home's answer: the actions waiting.
type phoneAnswer struct {
	AutomationStatus *string `json:"automation_status"`
	Actions          []struct {
		ID        string `json:"id"`
		Action    string `json:"action"`
		AdminPass string `json:"adminPass"`
	} `json:"actions"`
}

// call sends one request to the phone-home (body nil: GET), retrying
// failures for up to 20 s.
func (p *phoneHome) call(body any) (*phoneAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ans, err := p.once(ctx, body)
		if err == nil || ctx.Err() != nil {
			return ans, err
		}
		time.Sleep(time.Second)
	}
}

func (p *phoneHome) once(ctx context.Context, body any) (*phoneAnswer, error) {
	method, b := http.MethodGet, []byte(nil)
	if body != nil {
		method, b = http.MethodPost, must(json.Marshal(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ans phoneAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("phone-home %s: %s", method, resp.Status)
	}
	return &ans, nil
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// status posts an automation status.
func (p *phoneHome) status(status, detail string) {
	if len(detail) > 255 {
		detail = detail[:255]
	}
	body := map[string]any{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	if _, err := p.call(body); err != nil {
		fmt.Printf("ferric-testos: phone-home %s: %v\n", status, err)
		return
	}
	fmt.Printf("ferric-testos: phone-home status %s\n", status)
}

// serve polls the phone-home for actions forever and carries them out;
// after a password change it reports to reportURL (if any) again.
func (p *phoneHome) serve(md metaData, reportURL string) {
	for {
		time.Sleep(time.Duration(p.PollInterval) * time.Second)
		ans, err := p.call(nil)
		if err != nil {
			fmt.Printf("ferric-testos: phone-home poll: %v\n", err)
			continue
		}
		for _, a := range ans.Actions {
			result, detail := "done", ""
			if a.Action != "changePassword" {
				result, detail = "failed", "unknown action "+a.Action
			} else if entry, err := setRootPassword(a.AdminPass); err != nil {
				result, detail = "failed", err.Error()
			} else {
				fmt.Printf("ferric-testos: root password changed: %s\n", entry)
				if reportURL != "" {
					_ = report(reportURL, facts(md, "password"))
				}
			}
			if _, err := p.call(map[string]any{"actions": []any{map[string]string{"id": a.ID, "result": result, "detail": detail}}}); err != nil {
				fmt.Printf("ferric-testos: phone-home action %s: %v\n", a.ID, err)
			}
		}
	}
}

// applyUsers sets root's password and keys from the metadata.
func applyUsers(md metaData) error {
	if md.AdminPass != "" {
		entry, err := setRootPassword(md.AdminPass)
		if err != nil {
			return err
		}
		fmt.Printf("ferric-testos: root password set: %s\n", entry)
	}
	if len(md.PublicKeys) > 0 {
		if err := installKeys(md.PublicKeys); err != nil {
			return err
		}
		fmt.Printf("ferric-testos: %d key(s) in /root/.ssh/authorized_keys\n", len(md.PublicKeys))
	}
	return nil
}

// setRootPassword writes root's /etc/shadow entry with pass's SHA-512
// crypt hash (a fresh salt) and returns the entry.
func setRootPassword(pass string) (string, error) {
	if !strings.Contains(readFile("/etc/passwd"), "root:") {
		if err := os.WriteFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
			return "", err
		}
	}
	days := time.Now().Unix() / 86400
	entry := fmt.Sprintf("root:%s:%d:0:99999:7:::", sha512Crypt(pass, newSalt()), days)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(readFile("/etc/shadow")), "\n") {
		if l != "" && !strings.HasPrefix(l, "root:") {
			lines = append(lines, l)
		}
	}
	lines = append([]string{entry}, lines...)
	tmp := "/etc/shadow.new"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("root password: %w", err)
	}
	if err := os.Rename(tmp, "/etc/shadow"); err != nil {
		return "", fmt.Errorf("root password: %w", err)
	}
	return entry, nil
}

// installKeys writes the keys to root's authorized_keys.
func installKeys(keys map[string]string) error {
	names := make([]string, 0, len(keys))
	for n := range keys {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(strings.TrimSpace(keys[n]) + "\n")
	}
	dir := "/root/.ssh"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// facts is the report: who the OS is, and what it applied.
func facts(md metaData, event string) map[string]string {
	out := map[string]string{"uuid": md.UUID, "hostname": md.Hostname, "name": md.Name}
	if event == "" {
		return out
	}
	out["event"] = event
	for _, l := range strings.Split(readFile("/etc/shadow"), "\n") {
		if strings.HasPrefix(l, "root:") {
			out["root_shadow"] = l
		}
	}
	out["authorized_keys"] = readFile("/root/.ssh/authorized_keys")
	meta, _ := json.Marshal(md.Meta)
	out["meta"] = string(meta)
	return out
}
