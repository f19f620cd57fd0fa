// Package token keeps one access token per app (mini-program appid, or WeCom
// corp + secret) and shares it between every goroutine of the process and,
// through a Store such as Redis, between instances.
//
// The rules it implements (WECHAT-PROTOCOLS.md §0, §1.1, §2.1):
//
//   - One fetch at a time. Inside a process, concurrent callers that find no
//     usable token share one fetch (singleflight). Across instances, the
//     instance that wins a short lock (SET NX PX) fetches; the others poll
//     the Store until the token appears, or the lock expires and they try for
//     it themselves.
//   - Refresh early. A token is used until Margin before it expires (or half
//     its life, when it has less than twice Margin left), so a call never
//     races the expiry on the server.
//   - Invalidate only what failed. A business call refused with
//     40001/40014/42001 drops the token only if it is still the one the call
//     used (compare-and-delete), so a fresh token fetched meanwhile by another
//     goroutine or instance is not thrown away, then the call runs once more
//     with a fresh token (Use).
//
// If the Store fails (Redis down), the source logs a warning and fetches by
// itself: both token endpoints the clients use return the current token
// rather than minting a new one, so an uncoordinated fetch is wasteful but
// harmless.
package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Token is what a token endpoint answered.
type Token struct {
	Value     string
	ExpiresIn time.Duration
}

// Fetcher asks the platform for the app's access token.
type Fetcher interface {
	FetchToken(ctx context.Context) (Token, error)
}

// FetchFunc adapts a function to Fetcher.
type FetchFunc func(ctx context.Context) (Token, error)

// FetchToken calls f.
func (f FetchFunc) FetchToken(ctx context.Context) (Token, error) { return f(ctx) }

// Store shares tokens between instances. Keys are namespaced by the Store
// implementation; values are the bare token. adapters/redis.TokenCache
// implements it on Redis; NewMemoryStore in one process.
type Store interface {
	// Load returns the token under key and how long it stays usable, or ""
	// when there is none.
	Load(ctx context.Context, key string) (value string, ttl time.Duration, err error)
	// Save stores value under key for ttl.
	Save(ctx context.Context, key, value string, ttl time.Duration) error
	// DeleteIf deletes key only while it still holds value.
	DeleteIf(ctx context.Context, key, value string) (deleted bool, err error)
	// TryLock takes the lock named key for at most ttl. ok is false when
	// someone else holds it; release gives it back only if still ours.
	TryLock(ctx context.Context, key string, ttl time.Duration) (release func(context.Context), ok bool, err error)
}

// Config describes a Source.
type Config struct {
	// Key names the app in the Store, e.g. "wechat:wx123…" or
	// "wecom:ww123…:1000002:<secret fingerprint>". Required.
	Key     string
	Fetcher Fetcher // required
	Store   Store   // nil: this process only

	Margin       time.Duration    // refresh this long before expiry; default 5 min
	LockTTL      time.Duration    // how long one fetch may take and hold the lock; default 10 s
	PollInterval time.Duration    // how often waiting instances look for the token; default 100 ms
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // default: discard
}

// Defaults of Config.
const (
	DefaultMargin       = 5 * time.Minute
	DefaultLockTTL      = 10 * time.Second
	DefaultPollInterval = 100 * time.Millisecond
)

// Source hands out the app's current access token. It is safe for
// concurrent use; build one per app and share it.
type Source struct {
	key     string
	fetcher Fetcher
	store   Store
	margin  time.Duration
	lockTTL time.Duration
	poll    time.Duration
	now     func() time.Time
	log     *slog.Logger

	memo     atomic.Pointer[cached]
	rejected atomic.Pointer[string] // the last token a call was refused with
	group    singleflight.Group
}

type cached struct {
	value string
	until time.Time // use no later than this
}

// New builds a Source.
func New(cfg Config) (*Source, error) {
	if cfg.Key == "" || cfg.Fetcher == nil {
		return nil, errors.New("token.New: Key and Fetcher are required")
	}
	s := &Source{
		key: cfg.Key, fetcher: cfg.Fetcher, store: cfg.Store,
		margin: cfg.Margin, lockTTL: cfg.LockTTL, poll: cfg.PollInterval,
		now: cfg.Now, log: cfg.Logger,
	}
	if s.margin <= 0 {
		s.margin = DefaultMargin
	}
	if s.lockTTL <= 0 {
		s.lockTTL = DefaultLockTTL
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Key returns the Store key of the app.
func (s *Source) Key() string { return s.key }

// Token returns a usable access token, fetching one if needed. Concurrent
// callers share one fetch; each stops waiting when its own ctx is done
// (the fetch itself carries on for the others, bounded by LockTTL per try).
func (s *Source) Token(ctx context.Context) (string, error) {
	if c := s.memo.Load(); c != nil && s.now().Before(c.until) {
		return c.value, nil
	}
	ch := s.group.DoChan("token", func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others waiting on the same fetch. Bounded, so that a hung
		// endpoint or an everlasting foreign lock cannot hold the flight.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*s.lockTTL)
		defer cancel()
		return s.obtain(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops failed if it is still the current token, here and in the
// Store. A token already replaced is left alone.
func (s *Source) Invalidate(ctx context.Context, failed string) {
	if failed == "" {
		return
	}
	s.rejected.Store(&failed)
	if c := s.memo.Load(); c != nil && c.value == failed {
		s.memo.CompareAndSwap(c, nil)
	}
	if s.store == nil {
		return
	}
	if _, err := s.store.DeleteIf(ctx, s.key, failed); err != nil {
		s.log.Warn("token store: cannot drop a rejected token", "key", s.key, "err", err)
	}
}

// Use runs call with the current token. If call fails because the server
// refused the token (an error in its chain has IsTokenInvalid() == true),
// that token is invalidated and call runs once more with a fresh one.
func (s *Source) Use(ctx context.Context, call func(ctx context.Context, token string) error) error {
	tok, err := s.Token(ctx)
	if err != nil {
		return err
	}
	err = call(ctx, tok)
	if !refused(err) {
		return err
	}
	s.log.Info("access token refused; refreshing and retrying once", "key", s.key)
	s.Invalidate(ctx, tok)
	tok, err = s.Token(ctx)
	if err != nil {
		return err
	}
	return call(ctx, tok)
}

// refused reports whether err says the server refused the access token. The
// interface is the one the clients' error type implements.
func refused(err error) bool {
	var r interface{ IsTokenInvalid() bool }
	return err != nil && errors.As(err, &r) && r.IsTokenInvalid()
}

// obtain runs inside the single flight: memo, then Store, then the lock and
// a fetch.
func (s *Source) obtain(ctx context.Context) (string, error) {
	if c := s.memo.Load(); c != nil && s.now().Before(c.until) {
		return c.value, nil // refreshed by the flight that just ended
	}
	if s.store == nil {
		fctx, cancel := context.WithTimeout(ctx, s.lockTTL)
		defer cancel()
		return s.fetch(fctx, nil)
	}
	for {
		if v, ok := s.fromStore(ctx); ok {
			return v, nil
		}
		release, ok, err := s.store.TryLock(ctx, s.key+":lock", s.lockTTL)
		if err != nil {
			s.log.Warn("token store unavailable; fetching without coordination", "key", s.key, "err", err)
			return s.fetch(ctx, nil)
		}
		if ok {
			return s.fetchLocked(ctx, release)
		}
		// Another instance is fetching: wait for its token to appear.
		t := time.NewTimer(s.poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
	}
}

func (s *Source) fetchLocked(ctx context.Context, release func(context.Context)) (string, error) {
	defer release(ctx)
	// Double-check: the previous holder may have saved it just now.
	if v, ok := s.fromStore(ctx); ok {
		return v, nil
	}
	// The lock expires after LockTTL; fetching longer than that would let a
	// second instance fetch too.
	fctx, cancel := context.WithTimeout(ctx, s.lockTTL)
	defer cancel()
	return s.fetch(fctx, func(value string, hold time.Duration) {
		if err := s.store.Save(ctx, s.key, value, hold); err != nil {
			s.log.Warn("token store: cannot save the token; other instances will fetch their own", "key", s.key, "err", err)
		}
	})
}

// fromStore loads a usable token from the Store into the memo.
func (s *Source) fromStore(ctx context.Context) (string, bool) {
	v, ttl, err := s.store.Load(ctx, s.key)
	if err != nil {
		s.log.Warn("token store: cannot load the token", "key", s.key, "err", err)
		return "", false
	}
	if v == "" || ttl <= 0 {
		return "", false
	}
	if r := s.rejected.Load(); r != nil && *r == v {
		// A call was refused with it while this load was on its way: do
		// not bring it back.
		return "", false
	}
	s.memo.Store(&cached{value: v, until: s.now().Add(ttl)})
	return v, true
}

// fetch asks the platform and remembers the answer; save, if set, shares it.
func (s *Source) fetch(ctx context.Context, save func(value string, hold time.Duration)) (string, error) {
	t, err := s.fetcher.FetchToken(ctx)
	if err != nil {
		return "", err
	}
	if t.Value == "" || t.ExpiresIn <= 0 {
		return "", fmt.Errorf("token: %s: the token endpoint answered no token or no lifetime", s.key)
	}
	if r := s.rejected.Load(); r != nil && *r == t.Value {
		s.rejected.CompareAndSwap(r, nil) // the platform stands by it
	}
	hold := Hold(t.ExpiresIn, s.margin)
	s.memo.Store(&cached{value: t.Value, until: s.now().Add(hold)})
	if save != nil {
		save(t.Value, hold)
	}
	s.log.Info("access token refreshed", "key", s.key, "expires_in", t.ExpiresIn, "use_for", hold)
	return t.Value, nil
}

// Hold is how long a token with lifetime life is used: until margin before
// its end, but at least half its life (a token fetched close to its end, as
// WeCom's gettoken returns it, is still used rather than fetched again at
// once), and never less than a second.
func Hold(life, margin time.Duration) time.Duration {
	hold := max(life-margin, life/2)
	return max(hold, time.Second)
}
