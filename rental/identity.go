package rental

import (
	"strings"
	"time"
)

// Role is who is calling: every /api/v1 route names the roles it admits.
type Role string

const (
	RoleCustomer Role = "customer"
	RoleStaff    Role = "staff"
	RoleOwner    Role = "owner"
)

// IdentityID identifies a WeChat identity (an openid under our AppID).
type IdentityID int64

// Identity is a WeChat account that logged in to the mini-program.
type Identity struct {
	ID       IdentityID
	AppID    string
	OpenID   string
	UnionID  string
	MemberID MemberID
	Created  time.Time
}

// LinkAction is what proving a phone number does.
type LinkAction string

const (
	// LinkNothing: the phone already belongs to the caller's member.
	LinkNothing LinkAction = "nothing"
	// LinkSetPhone: nobody has the phone; it becomes the caller's member's.
	LinkSetPhone LinkAction = "set_phone"
	// LinkMoveIdentity: an existing member has the phone and no WeChat
	// identity yet; the caller's identity moves to it and the guest account
	// made at first login is merged into it.
	LinkMoveIdentity LinkAction = "move_identity"
	// LinkReview: the phone's member is already linked to another WeChat
	// identity, or both accounts are real members: never relink silently;
	// the owner decides.
	LinkReview LinkAction = "review"
)

// LinkState is what DecideLink needs to know, read in one transaction.
type LinkState struct {
	Caller           Member  // the member the caller's identity is linked to now
	CallerIdentities int     // WeChat identities linked to Caller (including the caller's)
	Owner            *Member // the member who has the proven phone, if any
	OwnerIdentities  int     // WeChat identities linked to Owner
}

// DecideLink applies the linking rules to a proven phone. It is pure: the
// store runs it inside the transaction that read the state and applies the
// result.
func DecideLink(s LinkState) LinkAction {
	switch {
	case s.Owner == nil:
		return LinkSetPhone
	case s.Owner.ID == s.Caller.ID:
		return LinkNothing
	case s.OwnerIdentities > 0:
		// Someone else's WeChat already holds this member.
		return LinkReview
	case !s.Caller.IsGuestOnline():
		// Two real accounts (the caller's has a card number or a phone of its
		// own): merging them is the owner's call.
		return LinkReview
	default:
		return LinkMoveIdentity
	}
}

// IsGuestOnline reports whether m is a bare account made at a first WeChat
// login: no card number, no proven phone. Only such an account is merged
// into an existing member without review.
func (m Member) IsGuestOnline() bool {
	return m.MemberNo == "" && m.Phone == ""
}

// NormalizePhone turns a Chinese mobile number as people type it ("138 0000
// 0000", "+86 13800000000", "8613800000000") into "8613800000000". Other
// countries' numbers are accepted with their country code ("+852…").
func NormalizePhone(raw string) (string, error) {
	const op = "rental.NormalizePhone"
	var b strings.Builder
	plus := false
	for i, r := range strings.TrimSpace(raw) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			plus = true
		case r == ' ' || r == '-' || r == '(' || r == ')':
		default:
			return "", Errorf(op, KindInvalid, "手机号格式不对：%q (not a phone number)", raw)
		}
	}
	d := b.String()
	switch {
	case !plus && len(d) == 11 && d[0] == '1':
		d = "86" + d
	case strings.HasPrefix(d, "86") && len(d) == 13 && d[2] == '1':
	case plus && len(d) >= 8 && len(d) <= 15 && !strings.HasPrefix(d, "86"):
		return d, nil
	default:
		return "", Errorf(op, KindInvalid, "手机号格式不对：%q (want an 11-digit mainland mobile number, or +country code)", raw)
	}
	if d[3] < '3' {
		return "", Errorf(op, KindInvalid, "手机号格式不对：%q (mainland mobile numbers start with 13–19)", raw)
	}
	return d, nil
}

// MaskPhone shows a phone number in logs and to staff without all of it:
// "86138****0000".
func MaskPhone(phone string) string {
	if len(phone) < 8 {
		return "****"
	}
	return phone[:len(phone)-8] + "****" + phone[len(phone)-4:]
}
