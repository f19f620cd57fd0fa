package gateway

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/redis"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
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
