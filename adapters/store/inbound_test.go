package store_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func migrated(t *testing.T, tg storetest.Target) *store.DB {
	t.Helper()
	db := openFresh(t, tg)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.UseDataKey(context.Background(), testKey); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSaveInboundOnce(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			sent := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
			in := &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "msg:123", Kind: "text", From: "o-abc", To: "gh_1", SentAt: sent, Payload: []byte("<xml>鱼竿卡住了</xml>")}
			created, err := db.SaveInbound(ctx, in)
			if err != nil || !created || in.ID == 0 {
				t.Fatalf("first save: created=%v id=%d err=%v", created, in.ID, err)
			}
			again := *in
			again.ID, again.Payload = 0, []byte("<xml>different</xml>")
			created, err = db.SaveInbound(ctx, &again)
			if err != nil || created || again.ID != in.ID {
				t.Fatalf("redelivery: created=%v id=%d (want %d) err=%v", created, again.ID, in.ID, err)
			}
			got, err := db.Inbound(ctx, in.ID)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Payload) != "<xml>鱼竿卡住了</xml>" || got.Kind != "text" || got.From != "o-abc" || !got.SentAt.Equal(sent) {
				t.Errorf("stored %+v", got)
			}
			// Same dedupe key on another channel is another record.
			other := &rental.Inbound{Channel: rental.ChannelWeCom, DedupeKey: "msg:123", Kind: "text", Payload: []byte("x")}
			if created, err := db.SaveInbound(ctx, other); !created || err != nil {
				t.Errorf("other channel: created=%v err=%v", created, err)
			}
			if _, err := db.SaveInbound(ctx, &rental.Inbound{Channel: rental.ChannelWeChat}); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("missing dedupe key: %v", err)
			}
			if _, err := db.Inbound(ctx, 999999); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("unknown id: %v", err)
			}
		})
	}
}

func TestSaveInboundConcurrentRedeliveries(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			db := migrated(t, tg)
			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			createdCount, ids := 0, map[int64]bool{}
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					in := &rental.Inbound{Channel: rental.ChannelWeCom, DedupeKey: "msg:race", Kind: "text", Payload: []byte("p")}
					created, err := db.SaveInbound(context.Background(), in)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if created {
						createdCount++
					}
					ids[in.ID] = true
				}()
			}
			wg.Wait()
			if createdCount != 1 || len(ids) != 1 {
				t.Errorf("%d deliveries created %d rows with %d ids, want 1 and 1", n, createdCount, len(ids))
			}
			if c, _ := db.CountInbound(context.Background(), rental.ChannelWeCom); c != 1 {
				t.Errorf("count %d", c)
			}
		})
	}
}

func TestInboundPayloadSealedAtRest(t *testing.T) {
	db := migrated(t, storetest.Target{Name: "sqlite"})
	ctx := context.Background()
	secret := "客户的手机号13800000000"
	a := &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "a", Kind: "text", Payload: []byte(secret)}
	b := &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "b", Kind: "text", Payload: []byte("other")}
	for _, in := range []*rental.Inbound{a, b} {
		if _, err := db.SaveInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	var raw []byte
	if err := db.SQL.QueryRow("SELECT payload FROM inbound WHERE id = ?", a.ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("13800000000")) {
		t.Fatal("payload stored in clear")
	}
	// Moving a's sealed payload onto b's row must not yield a's text under b.
	if _, err := db.SQL.Exec("UPDATE inbound SET payload = ? WHERE id = ?", raw, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Inbound(ctx, b.ID); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("swapped payload opened: %v", err)
	}
}

func TestInboundWithoutDataKeyRefused(t *testing.T) {
	db := openFresh(t, storetest.Target{Name: "sqlite"})
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := db.SaveInbound(context.Background(), &rental.Inbound{Channel: rental.ChannelWeChat, DedupeKey: "x", Payload: []byte("p")})
	if rental.ErrorKind(err) != rental.KindInternal {
		t.Errorf("saving without a data key: %v", err)
	}
}
