package paysim_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// attempts returns the simulator's delivery log without probes.
func attempts(s *paysim.Server) []paysim.NotifyAttempt {
	var out []paysim.NotifyAttempt
	for _, a := range s.Notifications() {
		if !a.Probe {
			out = append(out, a)
		}
	}
	return out
}

// TestNotifyDelivered: the payment notification is a signed, encrypted
// envelope the client verifies and decrypts (S19).
func TestNotifyDelivered(t *testing.T) {
	e := newEnv(t)
	r := e.order("T900001", 8800)
	r.Attach = "rental=42"
	id, err := e.client.PrepayJSAPI(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	e.pay("T900001", id)
	waitFor(t, "the notification", func() bool { return len(e.recv.notifications()) == 1 })
	n := e.recv.notifications()[0]
	tx := n.Transaction
	if n.EventType != wechatpay.EventTransactionSuccess || n.Summary != "支付成功" || n.ResourceType != "encrypt-resource" ||
		n.OriginalType != "transaction" || n.ID == "" || n.CreateTime.IsZero() || tx == nil {
		t.Fatalf("notification = %+v", n)
	}
	if tx.OutTradeNo != "T900001" || tx.TradeState != "SUCCESS" || tx.Amount.Total != 8800 || tx.Amount.PayerTotal != 8800 ||
		tx.Payer.OpenID != testOpenID || tx.Attach != "rental=42" || tx.TransactionID == "" || tx.SuccessTime.IsZero() || tx.MchID != testMchID {
		t.Fatalf("transaction = %+v", tx)
	}
	waitFor(t, "the attempt log", func() bool { return len(attempts(e.sim)) == 1 })
	a := attempts(e.sim)[0]
	if !a.Delivered || a.Status != http.StatusNoContent || a.EventID != n.ID || a.Attempt != 1 || a.OutTradeNo != "T900001" {
		t.Fatalf("attempt = %+v", a)
	}
}

// TestNotifyRetrySchedule follows WeChat Pay's schedule on the simulator
// clock: nothing before 15 s, then 15 s, 30 s, 3 min between attempts, the
// same event id each time, until the receiver says 200/204.
func TestNotifyRetrySchedule(t *testing.T) {
	e := newEnv(t)
	e.recv.set(func(r *receiver) {
		r.status = func(n int) int {
			if n <= 4 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}
	})
	e.pay("T910001", e.prepay("T910001", 100))
	count := func() int { return len(attempts(e.sim)) }
	waitFor(t, "attempt 1", func() bool { return count() == 1 })

	for i, wait := range []time.Duration{15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute} {
		e.clock.Advance(wait - time.Second)
		time.Sleep(30 * time.Millisecond) // several polls: nothing may be sent early
		if c := count(); c != i+1 {
			t.Fatalf("attempt %d came before its %s wait", c, wait)
		}
		e.clock.Advance(time.Second)
		waitFor(t, "the next attempt", func() bool { return count() == i+2 })
	}
	as := attempts(e.sim)
	for i, a := range as {
		if a.EventID != as[0].EventID || a.Attempt != i+1 {
			t.Fatalf("attempt %d = %+v", i, a)
		}
		if (i < 4) == a.Delivered {
			t.Fatalf("attempt %d delivered = %v (status %d)", i+1, a.Delivered, a.Status)
		}
	}
	e.clock.Advance(24 * time.Hour)
	time.Sleep(30 * time.Millisecond)
	if c := count(); c != 5 {
		t.Fatalf("%d attempts after success", c)
	}
	if got := e.recv.notifications(); len(got) != 5 || got[4].ID != got[0].ID {
		t.Fatalf("receiver saw %d notifications", len(got))
	}
}

// TestNotifyGivesUp: with the schedule compressed 100 000× (24 h in under a
// second of real time) a receiver that always fails gets the first attempt
// and 15 retries, then nothing more.
func TestNotifyGivesUp(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.Now, c.RetryScale = time.Now, 1e-5 })
	e.recv.set(func(r *receiver) { r.status = func(int) int { return http.StatusServiceUnavailable } })
	e.pay("T920001", e.prepay("T920001", 100))
	waitFor(t, "16 attempts", func() bool { return len(attempts(e.sim)) == 16 })
	time.Sleep(300 * time.Millisecond) // longer than the last (6 h → 216 ms) wait
	as := attempts(e.sim)
	if len(as) != 16 {
		t.Fatalf("%d attempts, want 1 + 15 retries", len(as))
	}
	for _, a := range as {
		if a.Delivered || a.Status != http.StatusServiceUnavailable || !strings.Contains(a.Error, "503") {
			t.Fatalf("attempt = %+v", a)
		}
	}
	if gap := as[15].At.Sub(as[14].At); gap < 200*time.Millisecond {
		t.Fatalf("last gap %s, want about 6h×1e-5 = 216ms", gap)
	}
}

// TestNotifyTimeoutCausesDuplicate: an answer later than NotifyTimeout
// counts as failure although the receiver processed it, so the retry is a
// duplicate the merchant must absorb.
func TestNotifyTimeoutCausesDuplicate(t *testing.T) {
	// The receiver's delay ends when the simulator gives up on the request.
	e := newEnv(t, func(c *paysim.Config) { c.NotifyTimeout = 500 * time.Millisecond })
	e.recv.set(func(r *receiver) { r.delay = 10 * time.Second })
	e.pay("T930001", e.prepay("T930001", 100))
	waitFor(t, "the timed-out attempt", func() bool { return len(attempts(e.sim)) == 1 })
	if a := attempts(e.sim)[0]; a.Delivered || a.Error == "" {
		t.Fatalf("slow answer counted as delivered: %+v", a)
	}
	e.recv.set(func(r *receiver) { r.delay = 0 })
	e.clock.Advance(15 * time.Second)
	waitFor(t, "the retry", func() bool { return len(attempts(e.sim)) == 2 })
	got := e.recv.notifications()
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Fatalf("receiver saw %d notifications", len(got))
	}
}

// TestNotifyDuplicates: WeChat Pay may deliver an acknowledged notification
// again; DuplicateNotifyRate and Redeliver make it happen.
func TestNotifyDuplicates(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.DuplicateNotifyRate = 1 })
	e.pay("T940001", e.prepay("T940001", 100))
	waitFor(t, "the first delivery", func() bool { return len(attempts(e.sim)) == 1 })
	e.clock.Advance(15 * time.Second)
	waitFor(t, "the duplicate", func() bool { return len(attempts(e.sim)) == 2 })
	as := attempts(e.sim)
	if !as[1].Delivered || !as[1].Duplicate || as[1].EventID != as[0].EventID {
		t.Fatalf("duplicate = %+v", as[1])
	}
	e.clock.Advance(time.Hour)
	time.Sleep(30 * time.Millisecond)
	if len(attempts(e.sim)) != 2 {
		t.Fatal("more than one duplicate")
	}

	// Redeliver through the control API.
	status, out := e.control("POST", "/control/notifications/redeliver", map[string]string{"id": as[0].EventID})
	if status != http.StatusOK {
		t.Fatalf("redeliver: %d %v", status, out)
	}
	waitFor(t, "the redelivery", func() bool { return len(attempts(e.sim)) == 3 })
	if a := attempts(e.sim)[2]; !a.Duplicate || !a.Delivered {
		t.Fatalf("redelivery = %+v", a)
	}
	if status, _ := e.control("POST", "/control/notifications/redeliver", map[string]string{"id": "nope"}); status != http.StatusNotFound {
		t.Fatalf("redeliver unknown: %d", status)
	}
}

// TestNotifyProbe: with SignProbeRate 1 a probe precedes every delivery; the
// client-based receiver rejects it with 401 and accepts the real one.
func TestNotifyProbe(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.SignProbeRate = 1 })
	// Answers are probes too, so read the prepay_id from the simulator.
	_, _ = e.client.PrepayJSAPI(context.Background(), e.order("T950001", 100))
	e.pay("T950001", e.sim.Orders()[0].PrepayID)
	waitFor(t, "the delivery", func() bool { return len(e.recv.notifications()) == 1 })
	waitFor(t, "the log", func() bool { return len(e.sim.Notifications()) == 2 })
	all := e.sim.Notifications()
	if !all[0].Probe || all[0].ProbeAccepted || all[0].Status != http.StatusUnauthorized || all[1].Probe || !all[1].Delivered {
		t.Fatalf("log = %+v", all)
	}
	if rej := e.recv.rejected(); len(rej) != 1 || !strings.Contains(rej[0].Error(), "probe") {
		t.Fatalf("receiver rejections = %v", rej)
	}
}

// TestNotifyDropFault: a dropped attempt is a failure; the schedule goes on.
func TestNotifyDropFault(t *testing.T) {
	var drops atomic.Int32
	e := newEnv(t, func(c *paysim.Config) {
		c.Fault = func(endpoint string) (paysim.Fault, bool) {
			if endpoint == paysim.EndpointNotify && drops.Add(1) == 1 {
				return paysim.Fault{Drop: true}, true
			}
			return paysim.Fault{}, false
		}
	})
	e.pay("T960001", e.prepay("T960001", 100))
	waitFor(t, "the dropped attempt", func() bool { return len(attempts(e.sim)) == 1 })
	if a := attempts(e.sim)[0]; !a.Dropped || a.Delivered {
		t.Fatalf("attempt = %+v", a)
	}
	if len(e.recv.notifications()) != 0 {
		t.Fatal("a dropped notification arrived")
	}
	e.clock.Advance(15 * time.Second)
	waitFor(t, "the retry", func() bool { return len(e.recv.notifications()) == 1 })
}
