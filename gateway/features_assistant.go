package gateway

import (
	"context"

	"github.com/tacklegate/tacklegate/rental"
)

// AssistantGate is what the bridge asks, for each customer message the
// assistant could answer, whether the "assistant" flag is on for that
// member (BridgeOptions.AssistantFor). The shop's opening hours the bridge
// reads itself, in its transaction (BridgeOptions.ShopHours).
type AssistantGate struct {
	Features *Features // nil: the assistant serves everyone
}

// Serves reports whether the assistant may answer member m
// (BridgeOptions.AssistantFor). It reads nothing from the database: the
// bridge calls it inside its processing transaction (a query on another
// connection could wait for one while the pool's other connections wait
// for this transaction's write lock), and the flags are held in memory.
func (g *AssistantGate) Serves(m rental.Member) bool {
	if g.Features == nil {
		return true
	}
	return g.Features.Enabled(context.Background(), int64(m.ID), string(m.Tier), FeatureAssistant)
}
