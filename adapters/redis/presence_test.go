package redis

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
)

func testClient(t *testing.T) *Client {
	t.Helper()
	url := os.Getenv("TACKLEGATE_TEST_REDIS_URL")
	if url == "" {
		storetest.SkipOrFailInCI(t, "TACKLEGATE_TEST_REDIS_URL not set: Redis tests skipped")
	}
	c, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPresenceStoreKeepsTheLatest(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	key := "tacklegate:test:presence:" + t.Name() + time.Now().Format("150405.000000")
	t.Cleanup(func() { c.Raw().Del(ctx, key) })
	a, b := NewPresenceStore(c, key), NewPresenceStore(c, key)
	t1 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	if err := a.Touch(ctx, "laowang", "hb", t1.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, "laowang", "hb", t1); err != nil { // older, from a slower instance
		t.Fatal(err)
	}
	if err := b.Touch(ctx, "xiaoli", "act", t1); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap["laowang"]["hb"].Equal(t1.Add(time.Minute)) || !snap["xiaoli"]["act"].Equal(t1) || len(snap) != 2 {
		t.Errorf("snapshot: %v", snap)
	}
	if err := a.Prune(ctx, t1.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if snap, _ := b.Snapshot(ctx); len(snap) != 1 || snap["laowang"]["hb"].IsZero() {
		t.Errorf("after pruning: %v", snap)
	}
}

func TestBusReachesEverySubscriber(t *testing.T) {
	c := testClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	channel := "tacklegate:test:live:" + time.Now().Format("150405.000000")
	pub := NewBus(c, channel)
	var mu sync.Mutex
	got := map[int][]string{}
	var wg sync.WaitGroup
	for i := range 2 {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			NewBus(c, channel).Subscribe(ctx, ready, func(b []byte) { //nolint:errcheck // ends with ctx
				mu.Lock()
				got[i] = append(got[i], string(b))
				mu.Unlock()
			})
		}()
		<-ready
	}
	if err := pub.Publish(ctx, []byte(`{"c":[7]}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n0, n1 := len(got[0]), len(got[1])
		mu.Unlock()
		if n0 == 1 && n1 == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers got %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if got[0][0] != `{"c":[7]}` {
		t.Errorf("payload %q", got[0][0])
	}
}
