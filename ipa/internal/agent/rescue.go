package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/ipa/internal/sshd"
	"github.com/ferric-metal/ferric/ipa/shacrypt"
)

// Rescue, as IPA's rescue extension: rescue.finalize_rescue receives the
// rescue password (hashed by the conductor, SHA-512 crypt), writes it
// where IPA does (ipa-rescue-config/ipa-rescue-password) and sets it as
// the password of the ramdisk's "rescue" user (the user Ironic's rescue
// ramdisk logs in with), then the agent stops: its command API closes and
// it heartbeats no more, so the conductor leaves the node to the user.
// With RescueSSHListen (":22" in the ramdisk) the agent then serves SSH
// (ipa/internal/sshd), where the rescue user logs in with that password.

// RescueUser is the ramdisk user whose password a rescue sets.
const RescueUser = "rescue"

// rescuePasswordFile is IPA's file of the hashed rescue password, under
// the ramdisk's /etc.
const rescuePasswordFile = "ipa-rescue-config/ipa-rescue-password"

type finalizeRescueParams struct {
	RescuePassword string `json:"rescue_password"`
	Hashed         bool   `json:"hashed"`
}

func validFinalizeRescue(raw json.RawMessage) error {
	var p finalizeRescueParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("invalid rescue parameters: %w", err)
	}
	if p.RescuePassword == "" {
		return errors.New("rescue_password is required")
	}
	return nil
}

func (a *Agent) cmdFinalizeRescue(_ context.Context, raw json.RawMessage, _ *command) (any, error) {
	var p finalizeRescueParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	if a.cfg.EtcDir == "" {
		return nil, errors.New("Rescue Operation failed: the agent manages no /etc (run it with --etc-dir outside the ramdisk)") //lint:ignore ST1005 IPA's message
	}
	hash := p.RescuePassword
	if !p.Hashed {
		h, err := shacrypt.Hash(p.RescuePassword)
		if err != nil {
			return nil, err
		}
		hash = h
	}
	if strings.ContainsAny(hash, ":\n") {
		return nil, errors.New("Rescue Operation failed: the rescue password hash contains ':' or a newline") //lint:ignore ST1005 IPA's message
	}
	if err := writeRescuePassword(a.cfg.EtcDir, hash); err != nil {
		return nil, fmt.Errorf("Rescue Operation failed when writing the hashed rescue password to the password file. Error %w", err) //lint:ignore ST1005 IPA's message
	}
	a.log.Info("rescue: password set; the agent stops", "user", RescueUser)
	return nil, nil
}

// stopAfterRescue stops the command API and the heartbeats once the
// answer to finalize_rescue has gone out.
func (a *Agent) stopAfterRescue(ctx context.Context, gen int) {
	a.startRescueSSH(ctx)
	go func() {
		_ = sleep(ctx, 500*time.Millisecond)
		a.lockdown(ctx, gen)
	}()
}

// startRescueSSH serves SSH on RescueSSHListen (once) for the rescue
// user, who logs in with the password in the shadow file.
func (a *Agent) startRescueSSH(ctx context.Context) {
	if a.cfg.RescueSSHListen == "" || a.cfg.EtcDir == "" {
		return
	}
	a.sshOnce.Do(func() {
		srv, err := sshd.Listen(sshd.Config{Listen: a.cfg.RescueSSHListen, User: RescueUser, Home: a.cfg.RescueHome, Log: a.log,
			CheckPassword: func(pw string) bool { return checkShadowPassword(a.cfg.EtcDir, RescueUser, pw) }})
		if err != nil {
			a.log.Error("rescue: no SSH server", "error", err)
			return
		}
		go func() {
			if err := srv.Serve(ctx); err != nil {
				a.log.Error("rescue: SSH server stopped", "error", err)
			}
		}()
	})
}

// checkShadowPassword reports whether pw is user's password in etc's
// shadow (a SHA-512 crypt hash; a locked or empty entry never matches).
func checkShadowPassword(etc, user, pw string) bool {
	b, err := os.ReadFile(filepath.Join(etc, "shadow"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 2 || f[0] != user || !strings.HasPrefix(f[1], "$") {
			continue
		}
		got, err := shacrypt.Crypt(pw, f[1])
		return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(f[1])) == 1
	}
	return false
}

// writeRescuePassword writes IPA's password file and sets hash as the
// rescue user's password in etc's shadow (adding the user to passwd and
// shadow when the ramdisk has none).
func writeRescuePassword(etc, hash string) error {
	pf := filepath.Join(etc, rescuePasswordFile)
	if err := os.MkdirAll(filepath.Dir(pf), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(pf, []byte(hash), 0o600); err != nil {
		return err
	}
	if err := setLine(filepath.Join(etc, "passwd"), 0o644, RescueUser, false,
		RescueUser+":x:1000:1000:rescue:/home/rescue:/bin/sh"); err != nil {
		return err
	}
	days := time.Now().Unix() / 86400
	return setLine(filepath.Join(etc, "shadow"), 0o600, RescueUser, true,
		fmt.Sprintf("%s:%s:%d:0:99999:7:::", RescueUser, hash, days))
}

// setLine puts line as user's entry of the colon-separated file path:
// added when missing; replaced when replace (else an existing entry
// stays).
func setLine(path string, mode os.FileMode, user string, replace bool, line string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var lines []string
	found := false
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, user+":") {
			found = true
			if replace {
				l = line
			}
		}
		lines = append(lines, l)
	}
	if !found {
		lines = append(lines, line)
	}
	tmp := path + ".ferric"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
