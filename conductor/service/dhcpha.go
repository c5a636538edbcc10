package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// With several conductors on one etcd store, full-mode DHCP runs on one of
// them at a time: the conductors configured with the same address range
// elect a leader (an etcd election tied to a lease of dhcpLeaderTTL), only
// the leader serves, and when it stops or dies its lease ends and another
// takes over. The leases live in the shared store, so the new leader
// knows every address handed out before it.

// dhcpLeaderTTL is how long a dead leader keeps the DHCP role.
const dhcpLeaderTTL = 5 * time.Second

// leaseTable is the store's record table of DHCP leases (key: the IPv4
// address).
const leaseTable = "dhcp4_leases"

// sharedStore is a store several conductors share (etcd), which elects
// the conductor that serves DHCP for an address range.
type sharedStore interface {
	store.Store
	Client() *clientv3.Client
	// Prefix is the store's key prefix, under which elections live.
	Prefix() string
}

var _ sharedStore = (*store.Etcd)(nil)

// storeLeases keeps dhcp.Leases in the conductor store (a record table,
// on either backend): DHCPv4's in leaseTable, DHCPv6's (v6) in
// lease6Table, with the same records.
type storeLeases struct {
	st store.Store
	v6 bool
}

type leaseRecord struct {
	MAC    string    `json:"mac"`
	Expiry time.Time `json:"expiry"`
}

// table is the record table of the store's family.
func (l storeLeases) table() string {
	if l.v6 {
		return lease6Table
	}
	return leaseTable
}

// holds reports whether ip is of the store's family.
func (l storeLeases) holds(ip netip.Addr) bool {
	if l.v6 {
		return ip.Is6() && !ip.Is4In6()
	}
	return ip.Is4()
}

func (l storeLeases) Load(context.Context) ([]dhcp.Lease, error) {
	recs, err := l.st.Records(l.table())
	if err != nil {
		return nil, fmt.Errorf("dhcp: load leases: %w", err)
	}
	var out []dhcp.Lease
	for _, r := range recs {
		var lr leaseRecord
		ip, err := netip.ParseAddr(r.Key)
		if err != nil || !l.holds(ip) || json.Unmarshal(r.Data, &lr) != nil {
			continue // not a lease this version wrote: leave it alone
		}
		mac, err := net.ParseMAC(lr.MAC)
		if err != nil {
			continue
		}
		out = append(out, dhcp.Lease{IP: ip, MAC: mac, Expiry: lr.Expiry})
	}
	return out, nil
}

func (l storeLeases) Store(ctx context.Context, lease dhcp.Lease) error {
	if !l.holds(lease.IP) || len(lease.MAC) != 6 {
		return fmt.Errorf("dhcp: store lease in %s: not an address of its family, or not an Ethernet MAC: %v %v", l.table(), lease.IP, lease.MAC)
	}
	data, err := json.Marshal(leaseRecord{MAC: lease.MAC.String(), Expiry: lease.Expiry.UTC()})
	if err != nil {
		return err
	}
	key := lease.IP.String()
	err = l.st.Update(ctx, func(tx store.Tx) error {
		r, err := tx.Record(l.table(), key)
		if errors.Is(err, store.ErrNotFound) {
			r, err = &store.Record{Key: key}, nil
		}
		if err != nil {
			return err
		}
		r.Data = data
		return tx.PutRecord(l.table(), r)
	})
	if err != nil {
		return fmt.Errorf("dhcp: store lease %v: %w", lease.IP, err)
	}
	return nil
}

func (l storeLeases) Remove(ctx context.Context, ip netip.Addr) error {
	err := l.st.Update(ctx, func(tx store.Tx) error {
		err := tx.DeleteRecord(l.table(), ip.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("dhcp: remove lease %v: %w", ip, err)
	}
	return nil
}

// serveAsLeader runs serve while this conductor leads the election at key,
// campaigning again whenever it loses the role, until ctx ends.
func serveAsLeader(ctx context.Context, st sharedStore, key, host string, log *slog.Logger, serve func(context.Context) error) error {
	for ctx.Err() == nil {
		err := leadOnce(ctx, st, key, host, log, serve)
		if err != nil && ctx.Err() == nil {
			log.Warn("dhcp: leadership lost or failed, campaigning again", "election", key, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func leadOnce(ctx context.Context, st sharedStore, key, host string, log *slog.Logger, serve func(context.Context) error) error {
	// The session outlives ctx so that Close can still revoke its lease.
	sess, err := concurrency.NewSession(st.Client(), concurrency.WithTTL(int(dhcpLeaderTTL/time.Second)),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close() // revokes the lease: the next leader starts at once
	el := concurrency.NewElection(sess, key)
	if err := el.Campaign(ctx, host); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	log.Info("dhcp: this conductor serves DHCP", "election", key)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done(): // the lease ended (etcd unreachable for the TTL)
			cancel()
		case <-lctx.Done():
		}
	}()
	err = serve(lctx)
	if ctx.Err() == nil && err == nil {
		err = errors.New("dhcp: leadership ended")
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx)
	return err
}
