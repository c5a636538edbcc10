package service

import (
	"errors"
	"path/filepath"

	"github.com/ferric-metal/ferric/conductor/api"
	"github.com/ferric-metal/ferric/conductor/ramdisklogs"
	"github.com/ferric-metal/ferric/conductor/store"
)

// ramdiskLogs keeps the logs collected from the ramdisk agents under
// <state-dir>/ramdisk-logs (the manager's RamdiskLogStore).
type ramdiskLogs struct{ s *ramdisklogs.Store }

func newRamdiskLogs(cfg Config) *ramdiskLogs {
	return &ramdiskLogs{s: &ramdisklogs.Store{Dir: filepath.Join(cfg.StateDir, "ramdisk-logs"),
		MaxBytes: cfg.RamdiskLogsMaxBytes, MaxAge: cfg.RamdiskLogsMaxAge, Log: cfg.Log}}
}

func (r *ramdiskLogs) SaveRamdiskLogs(n *store.Node, label string, data []byte) (string, error) {
	e, err := r.s.Save(ramdisklogs.Meta{NodeUUID: n.UUID, NodeName: deref(n.Name), InstanceUUID: deref(n.InstanceUUID), Label: label}, data)
	return e.Name, err
}

// mount serves GET /v1/nodes/{node}/ramdisk_logs[/{name}] in the API,
// behind its authentication.
func (r *ramdiskLogs) mount(srv *api.Server, st store.Store) {
	h := &ramdisklogs.Handler{Store: r.s, Node: func(ident string) (string, bool, error) {
		n, err := st.Node(ident)
		if errors.Is(err, store.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		return n.UUID, true, nil
	}}
	mux := h.Routes()
	mux.Miss = srv.Miss
	srv.MountV1(api.Version(api.MinMinor), mux, mux.Routes())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
