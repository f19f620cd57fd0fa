package members

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// receiver is the shop's other membership system: it verifies signatures,
// fails the first n deliveries with 503, and remembers what it accepted.
type receiver struct {
	mu       sync.Mutex
	failLeft int
	got      []wireEvent
	seen     map[string]int
	badSigs  int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	want := Sign([]byte("crm-shared-secret-123"), req.Header.Get("X-Tacklegate-Timestamp"), body)
	if !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Tacklegate-Signature"))) {
		r.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.failLeft > 0 {
		r.failLeft--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev wireEvent
	json.Unmarshal(body, &ev) //nolint:errcheck
	r.seen[req.Header.Get("X-Tacklegate-Delivery")]++
	r.got = append(r.got, ev)
	w.WriteHeader(http.StatusNoContent)
}

// TestMemberEventsReachTheDirectory: linking a member enqueues an event in
// the same transaction; the outbox worker delivers it signed, retrying
// through the receiver's outage, once.
func TestMemberEventsReachTheDirectory(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.UseDataKey(ctx, []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	db.EmitMemberEvents(true)
	rcv := &receiver{failLeft: 2, seen: map[string]int{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	if _, err := db.ImportMembers(ctx, []store.MemberImport{{Line: 2, MemberNo: "A001", Name: "张三", Phone: "8613800000001", Tier: "gold", JoinedAt: time.Now()}}, nil); err != nil {
		t.Fatal(err)
	}
	_, id, _, err := db.LoginWeChat(ctx, "wx1234567890abcdef", "o-alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ProvePhone(ctx, id.ID, "8613800000001", "sms"); err != nil {
		t.Fatal(err)
	}

	hook := &Webhook{URL: srv.URL, Secret: []byte("crm-shared-secret-123")}
	w := &store.OutboxWorker{DB: db, Handlers: map[string]store.Deliver{store.KindMemberDirectory: hook.Deliverer()},
		Poll: 10 * time.Millisecond, BaseDelay: 10 * time.Millisecond}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Wait for the outbox to record both deliveries, not merely for the
		// receiver to see them: the worker marks a row delivered only after
		// the receiver's answer, and stopping it in between leaves the row
		// pending (to be delivered again, with the same id).
		st, err := db.OutboxCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Delivered >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	types := []string{}
	for _, ev := range rcv.got {
		types = append(types, ev.Type)
	}
	if len(rcv.got) != 2 || rcv.got[0].Type != "member.created" || rcv.got[1].Type != "member.linked" {
		t.Fatalf("delivered %v, want [member.created member.linked]", types)
	}
	if linked := rcv.got[1].Member; linked.MemberNo != "A001" || linked.Phone != "8613800000001" || linked.Tier != "gold" {
		t.Errorf("linked member on the wire: %+v", linked)
	}
	for id, n := range rcv.seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if rcv.badSigs != 0 {
		t.Errorf("%d deliveries had bad signatures", rcv.badSigs)
	}
	st, _ := db.OutboxCounts(ctx)
	if st.Pending != 0 || st.Delivered != 2 || st.Dead != 0 {
		t.Errorf("outbox after delivery: %+v", st)
	}
}

func TestWebhookRefusalGoesToDeadLetters(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Migrate(ctx)                                                //nolint:errcheck
	db.UseDataKey(ctx, []byte("0123456789abcdef0123456789abcdef")) //nolint:errcheck
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "unknown member", 422) }))
	defer srv.Close()
	ev, _ := json.Marshal(rental.MemberEvent{ID: "e1", Type: "member.created", Member: rental.Member{ID: 1, Tier: "guest"}})
	if err := db.Enqueue(ctx, store.KindMemberDirectory, "e1", ev); err != nil {
		t.Fatal(err)
	}
	hook := &Webhook{URL: srv.URL, Secret: []byte("crm-shared-secret-123")}
	w := &store.OutboxWorker{DB: db, Handlers: map[string]store.Deliver{store.KindMemberDirectory: hook.Deliverer()}, Poll: 10 * time.Millisecond}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	w.Run(wctx)
	dead, err := db.DeadOutbox(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].Attempts != 1 {
		t.Fatalf("a refused event should be dead after one try: %+v %v", dead, err)
	}
	if err := db.ReplayOutbox(ctx, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.OutboxCounts(ctx); st.Dead != 0 || st.Pending != 1 {
		t.Errorf("after replay: %+v", st)
	}
}
