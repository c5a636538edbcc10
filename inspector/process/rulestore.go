package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// RulesTable is the store record table holding inspection rules.
const RulesTable = "inspection_rules"

// RuleStore is a rules.Store kept in the conductor's store (one record per
// rule in RulesTable, keyed by UUID, listed in creation order).
type RuleStore struct {
	st store.Store
}

// NewRuleStore returns the rules kept in st.
func NewRuleStore(st store.Store) *RuleStore { return &RuleStore{st: st} }

var _ rules.Store = (*RuleStore)(nil)

// ruleRecord is the stored form: the rule body plus its timestamps.
type ruleRecord struct {
	Rule      json.RawMessage `json:"rule"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt *time.Time      `json:"updated_at,omitempty"`
}

func decodeRule(rec *store.Record) (rules.Rule, error) {
	var rr ruleRecord
	if err := json.Unmarshal(rec.Data, &rr); err != nil {
		return rules.Rule{}, fmt.Errorf("rules: stored rule %s: %w", rec.Key, err)
	}
	var r rules.Rule
	if err := json.Unmarshal(rr.Rule, &r); err != nil {
		return rules.Rule{}, fmt.Errorf("rules: stored rule %s: %w", rec.Key, err)
	}
	r.CreatedAt, r.UpdatedAt = rr.CreatedAt, rr.UpdatedAt
	return r, nil
}

func encodeRule(r rules.Rule) (json.RawMessage, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ruleRecord{Rule: body, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
}

// List returns the rules in creation order.
func (s *RuleStore) List(ctx context.Context) ([]rules.Rule, error) {
	recs, err := s.st.Records(RulesTable)
	if err != nil {
		return nil, fmt.Errorf("rules: listing: %w", err)
	}
	out := make([]rules.Rule, 0, len(recs))
	for _, rec := range recs {
		r, err := decodeRule(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Get returns one rule.
func (s *RuleStore) Get(ctx context.Context, id string) (rules.Rule, error) {
	var r rules.Rule
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Record(RulesTable, id)
		if err != nil {
			return err
		}
		r, err = decodeRule(rec)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return rules.Rule{}, fmt.Errorf("rules: %s: %w", id, rules.ErrNotFound)
	}
	return r, err
}

// Create validates and stores r, assigning a UUID when it has none.
func (s *RuleStore) Create(ctx context.Context, r rules.Rule) (rules.Rule, error) {
	if r.Phase == "" {
		r.Phase = rules.PhaseMain
	}
	if err := rules.Validate(r); err != nil {
		return rules.Rule{}, err
	}
	if r.UUID == "" {
		r.UUID = uuid.NewString()
	} else if u, err := uuid.Parse(r.UUID); err != nil {
		return rules.Rule{}, fmt.Errorf("rules: %w: uuid %q is not a UUID", rules.ErrInvalidRule, r.UUID)
	} else {
		r.UUID = u.String()
	}
	r.CreatedAt, r.UpdatedAt = time.Now().UTC(), nil
	data, err := encodeRule(r)
	if err != nil {
		return rules.Rule{}, err
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Record(RulesTable, r.UUID); err == nil {
			return fmt.Errorf("rules: %s: %w", r.UUID, rules.ErrExists)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutRecord(RulesTable, &store.Record{Key: r.UUID, Data: data})
	})
	if err != nil {
		return rules.Rule{}, err
	}
	return r, nil
}

// Update replaces the rule r.UUID, keeping its creation time.
func (s *RuleStore) Update(ctx context.Context, r rules.Rule) (rules.Rule, error) {
	if r.Phase == "" {
		r.Phase = rules.PhaseMain
	}
	if err := rules.Validate(r); err != nil {
		return rules.Rule{}, err
	}
	err := s.st.Update(ctx, func(tx store.Tx) error {
		rec, err := tx.Record(RulesTable, r.UUID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("rules: %s: %w", r.UUID, rules.ErrNotFound)
		} else if err != nil {
			return err
		}
		old, err := decodeRule(rec)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		r.CreatedAt, r.UpdatedAt = old.CreatedAt, &now
		if rec.Data, err = encodeRule(r); err != nil {
			return err
		}
		return tx.PutRecord(RulesTable, rec)
	})
	if err != nil {
		return rules.Rule{}, err
	}
	return r, nil
}

// Delete removes one rule.
func (s *RuleStore) Delete(ctx context.Context, id string) error {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteRecord(RulesTable, id) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("rules: %s: %w", id, rules.ErrNotFound)
	}
	return err
}

// DeleteAll removes every rule.
func (s *RuleStore) DeleteAll(ctx context.Context) error {
	recs, err := s.st.Records(RulesTable)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.Tx) error {
		for _, rec := range recs {
			if err := tx.DeleteRecord(RulesTable, rec.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
}
