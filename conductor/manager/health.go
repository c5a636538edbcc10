package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// cacheHealth reads the machine's health from its BMC during the power
// sync and, when it changed, stores it in the node's health field (API
// 1.109) and journals the change in the node's history, as Ironic's
// node_cache_health. A management interface that cannot read it
// (driver.HealthReader) is skipped, and a failed read only logged.
func (m *Manager) cacheHealth(ctx context.Context, n *store.Node) {
	hr, ok := capability[driver.HealthReader](m, n, "management")
	if !ok {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	h, err := hr.Health(cctx, driverNode(n))
	cancel()
	if err != nil {
		m.log.Warn("manager: could not read the health of the node", "node", n.UUID, "err", err)
		return
	}
	if h == deref(n.Health) {
		return
	}
	err = m.st.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		old := deref(cur.Health)
		if cur.Reservation != nil || old == h {
			return errUnchanged
		}
		cur.Health = nil
		if h != "" {
			cur.Health = &h
		}
		if err := tx.PutNode(cur); err != nil {
			return err
		}
		return tx.AddHistory(cur.UUID, store.HistoryEvent{Severity: "INFO", EventType: "monitoring",
			Event: fmt.Sprintf("Node health status changed: health='%s' (previously '%s')", noneIfEmpty(h), noneIfEmpty(old))})
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		m.log.Warn("manager: storing the health of the node", "node", n.UUID, "err", err)
		return
	}
	if err == nil && (h == driver.HealthWarning || h == driver.HealthCritical) {
		m.log.Warn("manager: node health status indicates a problem", "node", n.UUID, "health", h)
	}
}

func noneIfEmpty(s string) string {
	if s == "" {
		return "None"
	}
	return s
}
