package token

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// MemoryStore is a Store inside one process. A Source needs no Store to
// work alone; MemoryStore lets several Sources in one process (tests, or two
// clients of the same app built separately) coordinate exactly as instances
// sharing Redis do.
type MemoryStore struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]memEntry
}

type memEntry struct {
	value   string
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store on the wall clock.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{now: time.Now, entries: map[string]memEntry{}}
}

func (m *MemoryStore) getLocked(key string) (memEntry, bool) {
	e, ok := m.entries[key]
	if ok && !m.now().Before(e.expires) {
		delete(m.entries, key)
		return memEntry{}, false
	}
	return e, ok
}

// Load implements Store.
func (m *MemoryStore) Load(_ context.Context, key string) (string, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.getLocked(key)
	if !ok {
		return "", 0, nil
	}
	return e.value, e.expires.Sub(m.now()), nil
}

// Save implements Store.
func (m *MemoryStore) Save(_ context.Context, key, value string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[key] = memEntry{value: value, expires: m.now().Add(ttl)}
	return nil
}

// DeleteIf implements Store.
func (m *MemoryStore) DeleteIf(_ context.Context, key, value string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.getLocked(key); ok && e.value == value {
		delete(m.entries, key)
		return true, nil
	}
	return false, nil
}

// TryLock implements Store.
func (m *MemoryStore) TryLock(_ context.Context, key string, ttl time.Duration) (func(context.Context), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, held := m.getLocked(key); held {
		return nil, false, nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	m.entries[key] = memEntry{value: owner, expires: m.now().Add(ttl)}
	return func(ctx context.Context) { _, _ = m.DeleteIf(ctx, key, owner) }, true, nil
}
