package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// withAssistantGate adds the assistant and its gate (flag and opening hours) to a
// bridge under test.
func withAssistantGate(mode assistant.Mode, gate **AssistantGate, features **Features) func(*BridgeOptions) {
	return func(o *BridgeOptions) {
		assistantDesk(mode)(o)
		f, err := NewFeatures(context.Background(), o.DB, nil)
		if err != nil {
			panic(err)
		}
		g := &AssistantGate{Features: f}
		o.AssistantFor, o.ShopHours = g.Serves, true
		*gate, *features = g, f
	}
}

// TestAssistantOutOfHours: a person is on duty, but the shop is closed:
// the assistant answers first (held from the person), and its hand-off
// says when the shop opens.
func TestAssistantOutOfHours(t *testing.T) {
	var gate *AssistantGate
	var f *Features
	e := newBridgeEnv(t, []string{"laowang:老王"}, withAssistantGate(assistant.ModeUnattended, &gate, &f))
	ctx := context.Background()
	now := e.sim.Clock().Now().In(rental.Shanghai())
	open := rental.ClockTime(((now.Hour() + 3) % 23) * 60) // an hour's window that is not now
	set, err := e.db.ShopSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set.Hours = rental.EveryDay(open, open+60)
	if err := e.db.SaveShopSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	if set.Hours.IsOpen(now) {
		t.Fatalf("the shop's hours %v are open at %v", set.Hours, now)
	}

	const openID = "o-night"
	e.customer(openID, "押金怎么退")
	e.waitCustomer(openID, "原路退回")
	e.settled()
	if bridgeCount(e.inboxTexts("laowang"), "押金怎么退") != 0 {
		t.Error("out of hours, the on-duty person got a message the assistant answered")
	}
	e.customer(openID, "转人工")
	handoff := e.waitCustomer(openID, "这就为您转人工")
	if !strings.Contains(handoff, "非营业时间") || !strings.Contains(handoff, fmt.Sprintf("%s 上班后", open)) {
		t.Errorf("hand-off out of hours: %q", handoff)
	}
	e.waitInbox("laowang", "押金怎么退")
}

// TestAssistantFlag: with the "assistant" flag off for a member, nobody on
// duty gives the usual auto-reply and no assistant answer; put on the
// allow list, the member gets the assistant.
func TestAssistantFlag(t *testing.T) {
	var gate *AssistantGate
	var f *Features
	e := newBridgeEnv(t, []string{"laowang:老王"}, withAssistantGate(assistant.ModeUnattended, &gate, &f))
	ctx := context.Background()
	if _, _, err := f.Update(ctx, FeatureAssistant, store.FeatureChange{Actor: "owner:owner", Action: "update"}, func(fl *store.FeatureFlag) error {
		fl.Percent = 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.staff("laowang", "/off")
	e.waitInbox("laowang", "已下班")
	const openID = "o-noai"
	e.customer(openID, "押金怎么退")
	e.waitCustomer(openID, "客服暂时不在线")
	e.settled()
	if n := bridgeCount(e.customerTexts(openID), "原路退回"); n != 0 {
		t.Fatalf("the assistant answered with its flag off (%d)", n)
	}
	member := e.memberOf(openID)
	if _, _, err := f.Update(ctx, FeatureAssistant, store.FeatureChange{Actor: "owner:owner", Action: "update"}, func(fl *store.FeatureFlag) error {
		fl.Allow = []store.FeatureListEntry{{Entry: fmt.Sprint(member), MemberID: int64(member)}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m, err := e.db.Member(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	other := m
	other.ID++
	if !gate.Serves(m) || gate.Serves(other) {
		t.Fatal("the gate disagrees with the allow list")
	}
	e.customer(openID, "押金什么时候退")
	e.waitCustomer(openID, "原路退回")
}
