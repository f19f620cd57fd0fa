package redis

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat/token"
)

// testTokenCache connects to TACKLEGATE_TEST_REDIS_URL and gives the test
// its own key prefix, whose keys are deleted afterwards.
func testTokenCache(t *testing.T) *TokenCache {
	t.Helper()
	url := os.Getenv("TACKLEGATE_TEST_REDIS_URL")
	if url == "" {
		storetest.SkipOrFailInCI(t, "TACKLEGATE_TEST_REDIS_URL not set: Redis tests skipped")
	}
	ctx := context.Background()
	c, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("tg-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := c.Raw().Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = c.Raw().Del(ctx, keys...).Err()
		}
		_ = c.Close()
	})
	return NewTokenCache(c, prefix)
}

func TestTokenCacheStore(t *testing.T) {
	tc := testTokenCache(t)
	ctx := context.Background()

	if v, ttl, err := tc.Load(ctx, "app"); err != nil || v != "" || ttl != 0 {
		t.Fatalf("empty Load = %q %v %v", v, ttl, err)
	}
	if err := tc.Save(ctx, "app", "tok1", time.Minute); err != nil {
		t.Fatal(err)
	}
	v, ttl, err := tc.Load(ctx, "app")
	if err != nil || v != "tok1" || ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("Load = %q %v %v", v, ttl, err)
	}
	if err := tc.Save(ctx, "app", "x", 0); err == nil {
		t.Error("Save with ttl 0 accepted")
	}

	if ok, err := tc.DeleteIf(ctx, "app", "tok0"); err != nil || ok {
		t.Fatalf("DeleteIf other value = %v %v", ok, err)
	}
	if v, _, _ := tc.Load(ctx, "app"); v != "tok1" {
		t.Fatal("DeleteIf deleted a token it did not hold")
	}
	if ok, err := tc.DeleteIf(ctx, "app", "tok1"); err != nil || !ok {
		t.Fatalf("DeleteIf same value = %v %v", ok, err)
	}
	if v, _, _ := tc.Load(ctx, "app"); v != "" {
		t.Fatal("not deleted")
	}
}

func TestTokenCacheLock(t *testing.T) {
	tc := testTokenCache(t)
	ctx := context.Background()
	release, ok, err := tc.TryLock(ctx, "app:lock", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v %v", ok, err)
	}
	if _, ok, _ := tc.TryLock(ctx, "app:lock", time.Second); ok {
		t.Fatal("lock taken twice")
	}
	release(ctx)
	release2, ok, _ := tc.TryLock(ctx, "app:lock", 100*time.Millisecond)
	if !ok {
		t.Fatal("released lock not free")
	}
	// An expired holder releasing late must not free the next holder's lock.
	time.Sleep(150 * time.Millisecond)
	_, ok, _ = tc.TryLock(ctx, "app:lock", time.Second)
	if !ok {
		t.Fatal("expired lock not free")
	}
	release2(ctx)
	if _, ok, _ := tc.TryLock(ctx, "app:lock", time.Second); ok {
		t.Fatal("a stale holder released someone else's lock")
	}
}

func TestTokenCacheForSilenceper(t *testing.T) {
	tc := testTokenCache(t)
	if tc.Get("k") != nil || tc.IsExist("k") {
		t.Fatal("missing key reported present")
	}
	if err := tc.Set("k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := tc.Get("k"); got != "v" || !tc.IsExist("k") {
		t.Fatalf("Get = %v", got)
	}
	if err := tc.Set("obj", map[string]int{"a": 1}, time.Minute); err != nil || tc.Get("obj") != `{"a":1}` {
		t.Fatalf("non-string value: %v %v", err, tc.Get("obj"))
	}
	// silenceper computes expires_in − margin, which can be ≤ 0: the value is
	// stale, so it is dropped instead of failing the token call.
	if err := tc.Set("k", "v2", 0); err != nil || tc.IsExist("k") {
		t.Fatalf("Set with timeout 0: %v, exists %v", err, tc.IsExist("k"))
	}
	_ = tc.Set("k", "v", time.Minute)
	if err := tc.Delete("k"); err != nil || tc.IsExist("k") {
		t.Fatalf("Delete: %v", err)
	}
}

// TestTwoInstancesFetchOnce: two token sources (two gateway instances)
// sharing one Redis fetch the token once, and a late invalidation by one
// does not throw away the token the other just fetched.
func TestTwoInstancesFetchOnce(t *testing.T) {
	tc := testTokenCache(t)
	var fetches atomic.Int64
	fetcher := token.FetchFunc(func(ctx context.Context) (token.Token, error) {
		n := fetches.Add(1)
		time.Sleep(50 * time.Millisecond) // a slow endpoint widens the race
		return token.Token{Value: fmt.Sprintf("tok%d", n), ExpiresIn: 2 * time.Hour}, nil
	})
	newInstance := func() *token.Source {
		s, err := token.New(token.Config{Key: "wechat:wxTEST", Fetcher: fetcher, Store: tc, PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newInstance(), newInstance()
	ctx := context.Background()

	var wg sync.WaitGroup
	got := make(chan string, 40)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			tok, err := s.Token(ctx)
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
	if n := fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 for two instances", n)
	}
	if v, ttl, _ := tc.Load(ctx, "wechat:wxTEST"); v != "tok1" || ttl > 2*time.Hour-5*time.Minute {
		t.Fatalf("Redis holds %q for %v, want tok1 for at most 1h55m", v, ttl)
	}

	a.Invalidate(ctx, "tok1")
	fresh, _ := a.Token(ctx)
	b.Invalidate(ctx, "tok1") // b's call failed with the old token, later
	if tok, _ := b.Token(ctx); tok != fresh || fresh != "tok2" {
		t.Fatalf("b = %q, a = %q, want both tok2", tok, fresh)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}
