package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

// slowInbound delays every write, like a database under load, so that the
// simulator gives up waiting and redelivers.
type slowInbound struct {
	rental.InboundStore
	delay atomic.Int64 // nanoseconds
	calls atomic.Int64
}

func (s *slowInbound) SaveInbound(ctx context.Context, in *rental.Inbound) (bool, error) {
	s.calls.Add(1)
	time.Sleep(time.Duration(s.delay.Load()))
	return s.InboundStore.SaveInbound(ctx, in)
}

// TestSimulatorRedeliveriesStoredOnce: WeChat and WeCom retry a push whose
// answer is late, with the same MsgId. Through the real simulator, a gateway
// slower than the push timeout sees every attempt and stores the message
// once; the next message, answered in time, is delivered at the first try.
func TestSimulatorRedeliveriesStoredOnce(t *testing.T) {
	db, err := store.Open(context.Background(), storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.UseDataKey(context.Background(), []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	cfg := wxsim.DefaultConfig()
	cfg.Push.Timeout = 100 * time.Millisecond
	const slowness = 300 * time.Millisecond
	slow := &slowInbound{InboundStore: db}
	slow.delay.Store(int64(slowness))
	mp, _ := msgcrypt.New(cfg.Token, cfg.EncodingAESKey, cfg.AppID)
	wc, _ := msgcrypt.New(cfg.WeComToken, cfg.WeComAESKey, cfg.CorpID)
	srv, _ := newTestServer(t, Options{Callbacks: &Callbacks{WeChat: mp, WeCom: wc, WeComCorpID: cfg.CorpID, WeComAgentID: cfg.AgentID,
		MaxSkew: 5 * time.Minute, Inbound: slow}})
	base := startHTTP(t, srv)
	cfg.PushURL, cfg.WeComCallbackURL = base+"/callbacks/wechat", base+"/callbacks/wecom"
	sim, err := wxsim.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ctx := context.Background()

	p, err := sim.CustomerSends(ctx, wxsim.DemoCustomerOpenID, wxsim.TextMessage("押金怎么退？"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Attempts) != 3 || p.Outcome != wxsim.OutcomeFailed {
		t.Fatalf("slow gateway: %d attempts, outcome %q; want 3 timed-out attempts", len(p.Attempts), p.Outcome)
	}
	q, err := sim.StaffSends(ctx, "laowang", wxsim.TextMessage("/on"))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Attempts) != 3 {
		t.Fatalf("slow gateway, WeCom: %d attempts", len(q.Attempts))
	}
	// Let the last slow writes finish, then count.
	time.Sleep(slowness + 200*time.Millisecond)
	if calls := slow.calls.Load(); calls != 6 {
		t.Errorf("gateway saw %d deliveries, want 6 (3 per push)", calls)
	}
	for ch, want := range map[rental.Channel]int64{rental.ChannelWeChat: 1, rental.ChannelWeCom: 1} {
		if n, _ := db.CountInbound(ctx, ch); n != want {
			t.Errorf("%s: stored %d, want %d", ch, n, want)
		}
	}

	slow.delay.Store(0)
	p, err = sim.CustomerSends(ctx, wxsim.DemoCustomerOpenID, wxsim.TextMessage("好的，谢谢"))
	if err != nil {
		t.Fatal(err)
	}
	// Delivered, and stored once. (Usually on the first attempt; on a
	// starved machine an answer may still miss the 100 ms push timeout, and
	// the redelivery must then be stored once too.)
	if p.Outcome != wxsim.OutcomeDelivered {
		t.Errorf("prompt gateway: %d attempts, outcome %q", len(p.Attempts), p.Outcome)
	}
	if n, _ := db.CountInbound(ctx, rental.ChannelWeChat); n != 2 {
		t.Errorf("after the second message: %d stored, want 2", n)
	}
}
