package store_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestCallLifecycle: a call is created with its ringing message in one
// transaction; an answer and a timeout racing for it cannot both win; the
// loser's conflict names the state; times and the rating are kept; the
// timeout scan finds only calls still ringing.
func TestCallLifecycle(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) { testCallLifecycle(t, tg) })
	}
}

func testCallLifecycle(t *testing.T, tg storetest.Target) {
	ctx := context.Background()
	db := migrated(t, tg)
	m, _, _, err := db.LoginWeChat(ctx, appID, "o-caller", "")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	ring := store.OutboxMessage{Kind: "call.ring", Key: "call.ring:{call}", Payload: []byte("{}")}
	var calls []*store.Call
	for i, room := range []string{"r-one", "r-two"} {
		c := &store.Call{RoomID: room, Kind: "video", Source: "quick_help", EntryID: "teach-line", MemberID: m.ID,
			Rung: []string{"laowang", "xiaoli"}, StartedAt: t0.Add(time.Duration(i) * time.Minute)}
		if err := db.CreateCall(ctx, c, ring); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	if err := db.CreateCall(ctx, &store.Call{RoomID: "r-one", Kind: "video", Source: "quick_help", StartedAt: t0}); rental.ErrorKind(err) != rental.KindConflict {
		t.Errorf("a second call for one room: %v", err)
	}
	items, err := db.ClaimOutbox(ctx, 10, time.Second)
	if err != nil || len(items) != 2 || items[0].Key != "call.ring:"+itoa(calls[0].ID) {
		t.Fatalf("ringing messages: %+v %v", items, err)
	}

	// Answer and timeout race; exactly one wins.
	var wg sync.WaitGroup
	results := make([]error, 2)
	for i, to := range []string{store.CallAnswered, store.CallMissed} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = db.ChangeCall(ctx, calls[0].ID, store.CallChange{From: []string{store.CallRinging}, To: to, At: t0.Add(10 * time.Second), Staff: "laowang"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		if err == nil {
			won++
		} else if rental.ErrorKind(err) != rental.KindConflict {
			t.Errorf("the loser: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d changes won the race: %v", won, results)
	}
	c, err := db.Call(ctx, calls[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.State == store.CallAnswered {
		if c.AnsweredAt == nil || !c.AnsweredAt.Equal(t0.Add(10*time.Second)) || c.EndedAt != nil || c.Staff != "laowang" {
			t.Errorf("answered: %+v", c)
		}
		end, err := db.ChangeCall(ctx, c.ID, store.CallChange{From: []string{store.CallAnswered}, To: store.CallEnded, At: t0.Add(70 * time.Second), Reason: "left"})
		if err != nil || end.Duration() != time.Minute || end.EndedReason != "left" {
			t.Errorf("ended: %+v %v", end, err)
		}
		if _, err := db.RateCall(ctx, c.ID, 4, t0.Add(2*time.Minute)); err != nil {
			t.Error(err)
		}
		if _, err := db.RateCall(ctx, c.ID, 5, t0.Add(3*time.Minute)); rental.ErrorKind(err) != rental.KindConflict {
			t.Errorf("rated twice: %v", err)
		}
	} else if c.EndedAt == nil || c.AnsweredAt != nil {
		t.Errorf("missed: %+v", c)
	}
	if c, err = db.Call(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.ChangeCall(ctx, c.ID, store.CallChange{From: []string{store.CallRinging}, To: store.CallDeclined})
	if rental.ErrorKind(err) != rental.KindConflict || !strings.Contains(rental.ErrorMessage(err), store.CallStateName(c.State)) {
		t.Errorf("declining a call that is %s: %v", c.State, err)
	}
	if _, err := db.RateCall(ctx, calls[1].ID, 5, t0); rental.ErrorKind(err) != rental.KindConflict {
		t.Errorf("rating a call nobody answered: %v", err)
	}
	if _, err := db.Call(ctx, 999999); rental.ErrorKind(err) != rental.KindNotFound {
		t.Errorf("no such call: %v", err)
	}

	due, err := db.RingingSince(ctx, t0.Add(2*time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].ID != calls[1].ID || strings.Join(due[0].Rung, ",") != "laowang,xiaoli" {
		t.Errorf("ringing since: %+v %v", due, err)
	}
	list, err := db.Calls(ctx, store.CallFilter{Member: m.ID, Limit: 1})
	if err != nil || len(list) != 1 || list[0].ID != calls[1].ID {
		t.Fatalf("first page: %+v %v", list, err)
	}
	list, err = db.Calls(ctx, store.CallFilter{Member: m.ID, Limit: 1, Before: list[0].ID})
	if err != nil || len(list) != 1 || list[0].ID != calls[0].ID {
		t.Errorf("second page: %+v %v", list, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
