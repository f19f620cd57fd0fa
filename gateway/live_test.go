package gateway

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tacklegate/tacklegate/adapters/redis"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// TestLiveAndPresenceAcrossInstances: two instances on one database and
// one Redis: a change reported on one reaches a socket on the other, and a
// heartbeat on one makes the staff member online on the other.
func TestLiveAndPresenceAcrossInstances(t *testing.T) {
	url := os.Getenv("TACKLEGATE_TEST_REDIS_URL")
	if url == "" {
		storetest.SkipOrFailInCI(t, "TACKLEGATE_TEST_REDIS_URL not set: Redis tests skipped")
	}
	rc, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil)
	suffix := strings.ReplaceAll(t.Name(), "/", "_") + time.Now().Format("150405.000000")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	instance := func() (*Presence, *Live) {
		var l *Live
		p, err := NewPresence(PresenceOptions{DB: e.db, Store: redis.NewPresenceStore(rc, "tacklegate:test:presence:"+suffix), Hours: alwaysOpen(),
			Changed: func() { l.PresenceChanged() }})
		if err != nil {
			t.Fatal(err)
		}
		l = NewLive(LiveOptions{DB: e.db, Bus: redis.NewBus(rc, "tacklegate:test:live:"+suffix), Presence: p})
		go p.Run(ctx)
		go l.Run(ctx)
		return p, l
	}
	pa, la := instance()
	pb, lb := instance()
	time.Sleep(200 * time.Millisecond) // both subscribed

	// A staff socket on instance B.
	sock := &liveConn{role: rental.RoleStaff, subject: "laowang", out: make(chan []byte, 64), kill: make(chan struct{})}
	lb.mu.Lock()
	lb.conns[sock] = true
	lb.mu.Unlock()

	e.customer("o-multi", "两台机器都能收到吗")
	e.waitInbox("laowang", "两台机器都能收到吗")
	conv := e.liveConversation(e.memberOf("o-multi"))
	la.Changed([]rental.ConversationID{conv.ID}) // reported on A
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		select {
		case b := <-sock.out:
			var ev map[string]any
			json.Unmarshal(b, &ev) //nolint:errcheck
			found = ev["type"] == "message" && strings.Contains(string(b), "两台机器都能收到吗")
		case <-deadline:
			t.Fatal("the change on instance A did not reach the socket on instance B")
		}
	}

	pa.Heartbeat("laowang")
	loads, err := e.db.StaffLoads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bridgeEventually(t, "B to see A's heartbeat", func() bool { return pb.StaffStatus(loads[0]) == PresenceOnline })
}

// TestWSDispatchesOnQuery: with the video rooms mounted, /ws?access= is the
// live channel and /ws?token= still the rooms' signaling.
func TestWSDispatchesOnQuery(t *testing.T) {
	e := newIdentityEnv(t)
	m, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	srv := New(Options{BodyLimit: 1 << 20, Identity: e.srv.opts.Identity, Rooms: &Rooms{Manager: m}})
	p, err := NewPresence(PresenceOptions{DB: e.db, Hours: alwaysOpen()})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountLive(NewLive(LiveOptions{DB: e.db, Presence: p}))
	base := startHTTP(t, srv)
	wsBase := "ws" + strings.TrimPrefix(base, "http")

	tok := e.customerLogin(t, "o-ws")
	c, _, err := websocket.DefaultDialer.Dial(wsBase+"/ws?access="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	var ev map[string]any
	if err := c.ReadJSON(&ev); err != nil || ev["type"] != "presence" {
		t.Fatalf("first live event: %v %v", ev, err)
	}
	if err := c.WriteJSON(map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadJSON(&ev); err != nil || ev["type"] != "pong" {
		t.Errorf("ping: %v %v", ev, err)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsBase+"/ws?token=forged", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("a forged room token: %v %v", err, resp)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsBase+"/ws?access=forged", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("a forged access token: %v %v", err, resp)
	}
}
