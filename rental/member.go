package rental

import (
	"context"
	"time"
)

// MemberID identifies a member (a customer account) of the shop.
type MemberID int64

// Tier is a membership tier, as the shop names them ("gold", "silver", …).
// Customers who arrive through WeChat without an existing account start as
// TierGuest.
type Tier string

// TierGuest is the tier of a member created on first login.
const TierGuest Tier = "guest"

// Member is one customer account. Imported members carry the shop's own
// member number; a WeChat identity and a proven phone link to one member.
type Member struct {
	ID       MemberID
	MemberNo string // the shop's card number; empty for guests created online
	Name     string
	Phone    string // E.164 without "+", e.g. "8613800000000"; empty until proven
	Tier     Tier
	Points   int64
	JoinedAt time.Time
}

// MemberDirectory is the shop's other membership system, where one exists:
// it is told about members created and linked here. Calls go through the
// outbox, so an implementation may fail and be retried.
type MemberDirectory interface {
	MemberChanged(ctx context.Context, event MemberEvent) error
}

// MemberEvent is what the directory is told.
type MemberEvent struct {
	ID     string // idempotency key: the same event is delivered with the same ID
	Type   string // "member.created", "member.linked", "member.unlinked", "member.merged"
	Member Member
	At     time.Time
}
