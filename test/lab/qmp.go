package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// QMP runs one command on the QEMU Machine Protocol socket at path and
// returns its "return" value. It negotiates capabilities first and skips
// asynchronous events. Without a deadline in ctx it gives up after 5 s.
func QMP(ctx context.Context, path, command string, args map[string]any) (json.RawMessage, error) {
	return qmp(ctx, path, command, args, "")
}

// qmp runs command; with a non-empty event it also waits for that event
// after the command's reply (e.g. RESET after system_reset, which QEMU
// carries out after answering).
func qmp(ctx context.Context, path, command string, args map[string]any, event string) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("lab: qmp %s: %w", command, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	type reply struct {
		QMP    json.RawMessage `json:"QMP"`
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
		Event string `json:"event"`
	}
	seen := false // event was received
	read := func() (reply, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return reply{}, err
			}
			var m reply
			if err := json.Unmarshal(line, &m); err != nil {
				return reply{}, fmt.Errorf("bad reply %q: %w", line, err)
			}
			if event != "" && m.Event == event {
				seen = true
				continue
			}
			if m.Event != "" || m.QMP != nil {
				continue
			}
			return m, nil
		}
	}
	send := func(cmd string, a map[string]any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if a != nil {
			req["arguments"] = a
		}
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return nil, err
		}
		m, err := read()
		if err != nil {
			return nil, err
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	}
	if _, err := send("qmp_capabilities", nil); err != nil {
		return nil, fmt.Errorf("lab: qmp %s: %w", command, err)
	}
	ret, err := send(command, args)
	if err != nil {
		return nil, fmt.Errorf("lab: qmp %s: %w", command, err)
	}
	for event != "" && !seen {
		// Each query-status reply reads the events sent before it.
		if _, err := send("query-status", nil); err != nil {
			return nil, fmt.Errorf("lab: qmp %s: waiting for %s: %w", command, event, err)
		}
		if !seen {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("lab: qmp %s: waiting for %s: %w", command, event, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return ret, nil
}
