package rules

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// Store keeps inspection rules. The conductor implements it over its
// database (bbolt); MemStore is an in-memory implementation for tests and
// single-process tools. Create assigns a UUID when the rule has none and
// answers ErrExists for a taken one; Get, Update and Delete answer
// ErrNotFound. Create and Update validate the rule (ErrInvalidRule) and
// keep CreatedAt/UpdatedAt.
type Store interface {
	List(ctx context.Context) ([]Rule, error)
	Get(ctx context.Context, uuid string) (Rule, error)
	Create(ctx context.Context, r Rule) (Rule, error)
	// Update replaces the rule with r.UUID.
	Update(ctx context.Context, r Rule) (Rule, error)
	Delete(ctx context.Context, uuid string) error
	DeleteAll(ctx context.Context) error
}

// MemStore is a Store in memory, safe for concurrent use.
type MemStore struct {
	mu    sync.Mutex
	rules map[string]Rule
	order []string
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rules: map[string]Rule{}} }

// List returns the rules in creation order.
func (m *MemStore) List(ctx context.Context) ([]Rule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Rule, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.rules[id])
	}
	return out, nil
}

// Get returns one rule.
func (m *MemStore) Get(ctx context.Context, id string) (Rule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rules[id]
	if !ok {
		return Rule{}, fmt.Errorf("rules: %s: %w", id, ErrNotFound)
	}
	return r, nil
}

// Create validates and stores r.
func (m *MemStore) Create(ctx context.Context, r Rule) (Rule, error) {
	if err := Validate(r); err != nil {
		return Rule{}, err
	}
	if r.UUID == "" {
		r.UUID = uuid.NewString()
	} else if !ironichttp.IsUUIDLike(r.UUID) {
		return Rule{}, fmt.Errorf("rules: %w: uuid %q is not a UUID", ErrInvalidRule, r.UUID)
	}
	if r.Phase == "" {
		r.Phase = PhaseMain
	}
	r.CreatedAt, r.UpdatedAt = time.Now().UTC(), nil
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rules[r.UUID]; ok {
		return Rule{}, fmt.Errorf("rules: %s: %w", r.UUID, ErrExists)
	}
	m.rules[r.UUID] = r
	m.order = append(m.order, r.UUID)
	return r, nil
}

// Update replaces one rule, keeping its place and creation time.
func (m *MemStore) Update(ctx context.Context, r Rule) (Rule, error) {
	if r.Phase == "" {
		r.Phase = PhaseMain
	}
	if err := Validate(r); err != nil {
		return Rule{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.rules[r.UUID]
	if !ok {
		return Rule{}, fmt.Errorf("rules: %s: %w", r.UUID, ErrNotFound)
	}
	now := time.Now().UTC()
	r.CreatedAt, r.UpdatedAt = old.CreatedAt, &now
	m.rules[r.UUID] = r
	return r, nil
}

// Delete removes one rule.
func (m *MemStore) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rules[id]; !ok {
		return fmt.Errorf("rules: %s: %w", id, ErrNotFound)
	}
	delete(m.rules, id)
	for j, x := range m.order {
		if x == id {
			m.order = append(m.order[:j], m.order[j+1:]...)
			break
		}
	}
	return nil
}

// DeleteAll removes every rule.
func (m *MemStore) DeleteAll(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules = map[string]Rule{}
	m.order = nil
	return nil
}
