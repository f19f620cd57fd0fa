package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// AssistantGate is what the bridge asks, for each customer message the
// assistant could answer: whether the "assistant" flag is on for that
// member (BridgeOptions.AssistantFor), and the shop's opening hours
// (BridgeOptions.Hours), so that out of hours the assistant answers first
// even while someone is still on duty.
type AssistantGate struct {
	DB       *store.DB
	Features *Features // nil: the assistant serves everyone
	Logger   *slog.Logger

	mu      sync.Mutex
	hours   rental.OpeningHours
	hoursAt time.Time
}

// gateHoursTTL is how long the opening hours are cached: the owner's change
// applies within it.
const gateHoursTTL = 30 * time.Second

func (g *AssistantGate) log() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Serves reports whether the assistant may answer member m. If the member
// cannot be read the flag is decided for their id without a tier (a
// percentage rollout still applies; tier targeting then leaves them out).
func (g *AssistantGate) Serves(m rental.MemberID) bool {
	if g.Features == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tier := ""
	if mem, err := g.DB.Member(ctx, m); err == nil {
		tier = string(mem.Tier)
	} else {
		g.log().Warn("assistant flag: member not read", "member", m, "error", err)
	}
	return g.Features.Enabled(ctx, int64(m), tier, FeatureAssistant)
}

// Hours returns the shop's opening hours, cached for gateHoursTTL; the zero
// value (unknown: only who is on duty decides) when they cannot be read.
func (g *AssistantGate) Hours() rental.OpeningHours {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.hoursAt) < gateHoursTTL {
		return g.hours
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	set, err := g.DB.ShopSettings(ctx)
	if err != nil {
		g.log().Warn("assistant: opening hours not read", "error", err)
		return g.hours
	}
	g.hours, g.hoursAt = set.Hours, time.Now()
	return g.hours
}
