package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// platform is a fake token endpoint: it counts fetches and hands out
// "tok1", "tok2", … each valid for life.
type platform struct {
	fetches atomic.Int64
	life    time.Duration
	delay   time.Duration
	fail    atomic.Pointer[error]
}

func (p *platform) FetchToken(ctx context.Context) (Token, error) {
	n := p.fetches.Add(1)
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return Token{}, ctx.Err()
		}
	}
	if e := p.fail.Load(); e != nil {
		return Token{}, *e
	}
	return Token{Value: fmt.Sprintf("tok%d", n), ExpiresIn: p.life}, nil
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newSource(t *testing.T, p *platform, store Store, now func() time.Time) *Source {
	t.Helper()
	s, err := New(Config{Key: "test:app", Fetcher: p, Store: store, Now: now, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refusal is how the clients' error type looks to the source.
type refusal struct{}

func (refusal) Error() string        { return "errcode 40001" }
func (refusal) IsTokenInvalid() bool { return true }

func TestHold(t *testing.T) {
	for _, tt := range []struct{ life, want time.Duration }{
		{7200 * time.Second, 6900 * time.Second},
		{600 * time.Second, 300 * time.Second},
		{300 * time.Second, 150 * time.Second}, // WeCom near the end: use half rather than refetch at once
		{time.Second, time.Second},
		{0, time.Second},
	} {
		if got := Hold(tt.life, 5*time.Minute); got != tt.want {
			t.Errorf("Hold(%v) = %v, want %v", tt.life, got, tt.want)
		}
	}
}

func TestCachedUntilMarginBeforeExpiry(t *testing.T) {
	clk := &clock{now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	p := &platform{life: 2 * time.Hour}
	s := newSource(t, p, nil, clk.Now)
	ctx := context.Background()
	for range 3 {
		if tok, err := s.Token(ctx); err != nil || tok != "tok1" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
	}
	clk.Advance(2*time.Hour - 5*time.Minute - time.Second)
	if tok, _ := s.Token(ctx); tok != "tok1" {
		t.Fatalf("refreshed too early: %q", tok)
	}
	clk.Advance(time.Second)
	if tok, _ := s.Token(ctx); tok != "tok2" {
		t.Fatalf("not refreshed at expiry − margin: %q", tok)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	p := &platform{life: 2 * time.Hour, delay: 30 * time.Millisecond}
	s := newSource(t, p, nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if tok, err := s.Token(context.Background()); err != nil || tok != "tok1" {
				errs <- fmt.Errorf("Token = %q, %v", tok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestCancelledCallerDoesNotFailTheOthers(t *testing.T) {
	p := &platform{life: time.Hour, delay: 100 * time.Millisecond}
	s := newSource(t, p, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := s.Token(ctx)
		first <- err
	}()
	time.Sleep(20 * time.Millisecond) // the first caller starts the fetch
	second := make(chan string, 1)
	go func() {
		tok, _ := s.Token(context.Background())
		second <- tok
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if tok := <-second; tok != "tok1" {
		t.Fatalf("the other caller got %q", tok)
	}
}

func TestInvalidateOnlyTheFailedToken(t *testing.T) {
	p := &platform{life: time.Hour}
	s := newSource(t, p, nil, nil)
	ctx := context.Background()
	old, _ := s.Token(ctx)
	s.Invalidate(ctx, old)
	fresh, _ := s.Token(ctx)
	if fresh == old {
		t.Fatal("invalidated token handed out again")
	}
	// A slow call that failed with the old token must not drop the new one.
	s.Invalidate(ctx, old)
	if tok, _ := s.Token(ctx); tok != fresh {
		t.Fatalf("late invalidation replaced %q with %q", fresh, tok)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestUseRetriesOnceOnRefusal(t *testing.T) {
	p := &platform{life: time.Hour}
	s := newSource(t, p, nil, nil)
	var used []string
	err := s.Use(context.Background(), func(_ context.Context, tok string) error {
		used = append(used, tok)
		if len(used) == 1 {
			return fmt.Errorf("send: %w", refusal{})
		}
		return nil
	})
	if err != nil || len(used) != 2 || used[0] == used[1] {
		t.Fatalf("err %v, tokens used %v", err, used)
	}

	// Refused twice: the second refusal is returned, no third try.
	calls := 0
	err = s.Use(context.Background(), func(context.Context, string) error { calls++; return refusal{} })
	if !errors.Is(err, refusal{}) || calls != 2 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	// Other errors are not retried.
	calls = 0
	boom := errors.New("boom")
	if err := s.Use(context.Background(), func(context.Context, string) error { calls++; return boom }); err != boom || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestFetchErrorReachesEveryCaller(t *testing.T) {
	p := &platform{life: time.Hour}
	bad := errors.New("errcode 40125")
	p.fail.Store(&bad)
	s := newSource(t, p, nil, nil)
	if _, err := s.Token(context.Background()); err != bad {
		t.Fatalf("err = %v", err)
	}
	p.fail.Store(nil)
	if tok, err := s.Token(context.Background()); err != nil || tok == "" {
		t.Fatalf("after recovery: %q %v", tok, err)
	}
}

func TestInstancesSharingAStoreFetchOnce(t *testing.T) {
	store := NewMemoryStore()
	p := &platform{life: 2 * time.Hour, delay: 50 * time.Millisecond}
	a := newSource(t, p, store, nil)
	b := newSource(t, p, store, nil)
	var wg sync.WaitGroup
	got := make(chan string, 40)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- tok
		})
	}
	wg.Wait()
	close(got)
	for tok := range got {
		if tok != "tok1" {
			t.Fatalf("instances disagree: %q", tok)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 for two instances", n)
	}

	// Instance a learns the token was refused and refreshes; b, whose memo
	// still has the old one, then fails with it: its invalidation must not
	// delete a's fresh token from the store.
	ctx := context.Background()
	a.Invalidate(ctx, "tok1")
	fresh, _ := a.Token(ctx)
	b.Invalidate(ctx, "tok1")
	if tok, _ := b.Token(ctx); tok != fresh {
		t.Fatalf("b got %q, want a's %q", tok, fresh)
	}
	if v, _, _ := store.Load(ctx, "test:app"); v != fresh {
		t.Fatalf("store holds %q, want %q", v, fresh)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

// brokenStore fails every operation, like Redis being down.
type brokenStore struct{}

var errDown = errors.New("connection refused")

func (brokenStore) Load(context.Context, string) (string, time.Duration, error) {
	return "", 0, errDown
}
func (brokenStore) Save(context.Context, string, string, time.Duration) error { return errDown }
func (brokenStore) DeleteIf(context.Context, string, string) (bool, error)    { return false, errDown }
func (brokenStore) TryLock(context.Context, string, time.Duration) (func(context.Context), bool, error) {
	return nil, false, errDown
}

func TestStoreDownFallsBackToFetching(t *testing.T) {
	p := &platform{life: time.Hour}
	s := newSource(t, p, brokenStore{}, nil)
	if tok, err := s.Token(context.Background()); err != nil || tok != "tok1" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	s.Invalidate(context.Background(), "tok1") // logs, does not panic
}

func TestWaitingInstanceTakesOverAnAbandonedLock(t *testing.T) {
	store := NewMemoryStore()
	ctx := context.Background()
	// A crashed instance left its lock behind.
	if _, ok, _ := store.TryLock(ctx, "test:app:lock", 80*time.Millisecond); !ok {
		t.Fatal("lock not taken")
	}
	p := &platform{life: time.Hour}
	s := newSource(t, p, store, nil)
	start := time.Now()
	if tok, err := s.Token(ctx); err != nil || tok != "tok1" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Fatalf("did not wait for the lock (%v)", d)
	}
}
