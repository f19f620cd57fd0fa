package rental

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ConversationID identifies a conversation between a customer and the shop.
type ConversationID int64

// ConversationState is where a conversation stands.
//
//	open ──assign──▶ assigned ──resolve──▶ resolved
//	  └──────────────resolve──────────────▶
//
// A resolved conversation is closed for good: its transcript, once
// exported, never grows. A customer who writes again (other than to give
// the rating they were asked for) starts a new conversation that points at
// the previous one and goes back to the same staff member when they are on
// duty (sticky assignment). That is what "reopened by a new message" means
// here: one live conversation per customer at any time, one rating and one
// evidence chain per conversation.
type ConversationState string

const (
	ConversationOpen     ConversationState = "open"     // waiting for a staff member
	ConversationAssigned ConversationState = "assigned" // a staff member answers it
	ConversationResolved ConversationState = "resolved" // closed; the customer was asked for a rating
)

// Where a customer writes from (Conversation.CustomerChannel).
const (
	CustomerViaWeChat = "wechat"
	CustomerViaApp    = "app"
)

// CustomerServiceWindow is how long after a customer's message the shop may
// write to them with customer-service messages (WeChat's 48-hour rule; past
// it WeChat answers 45015).
const CustomerServiceWindow = 48 * time.Hour

// Conversation is one customer's thread with the shop.
type Conversation struct {
	ID       ConversationID
	MemberID MemberID
	// OpenID is the WeChat identity replies go to: the one the customer
	// last wrote from.
	OpenID string
	// CustomerChannel is where the customer last wrote from: ChannelApp
	// (the in-app chat, where replies are read) or "" / ChannelWeChat
	// (mini-program customer service, where replies are sent).
	CustomerChannel string
	State           ConversationState
	Assignee        string         // the staff member's WeCom userid; "" while open
	PrevID          ConversationID // the customer's previous conversation, if any
	Tags            []string

	OpenedAt   time.Time
	AssignedAt time.Time
	ResolvedAt time.Time
	ResolvedBy string // the WeCom userid that closed it

	LastCustomerAt time.Time // starts WeChat's 48-hour reply window
	LastStaffAt    time.Time
	// AwayReplyAt is when the customer was last told nobody is available;
	// the auto-reply is sent at most once an hour.
	AwayReplyAt time.Time
	// QueuedNoticeAt is when on-duty staff were told the conversation waits
	// because everyone is at capacity.
	QueuedNoticeAt time.Time

	RatingAskedAt time.Time
	Rating        int // 1–5; 0 when not rated
	RatedAt       time.Time

	Head ConversationHead // where the evidence chain of its messages ends
}

// Code is what staff type to name the conversation: "A7".
func (c *Conversation) Code() string { return ConversationCode(c.ID) }

// Live reports whether the conversation is not resolved.
func (c *Conversation) Live() bool { return c.State != ConversationResolved }

// ConversationCode formats an id as staff type it: "A7". The letter keeps
// "#A7" from reading as a number in chat and leaves room for other kinds of
// codes later.
func ConversationCode(id ConversationID) string { return "A" + strconv.FormatInt(int64(id), 10) }

// ParseConversationCode reads "A7", "a7", "#A7", "＃Ａ７" or "7".
func ParseConversationCode(s string) (ConversationID, bool) {
	s = strings.TrimSpace(chatFoldWidth(s))
	s = strings.TrimPrefix(s, "#")
	if len(s) > 0 && (s[0] == 'A' || s[0] == 'a') {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return ConversationID(n), true
}

// chatFoldWidth turns full-width ASCII (what Chinese input methods type:
// "／ｔａｋｅ　Ａ７", "＃", "５") and the ideographic space into plain ASCII.
func chatFoldWidth(s string) string {
	if chatIsASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\u3000':
			r = ' '
		case r >= '\uFF01' && r <= '\uFF5E':
			r -= '\uFF01' - '!'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func chatIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Assign gives the conversation to a staff member (also to take it over
// from another). A resolved conversation cannot be assigned.
func (c *Conversation) Assign(userID string, at time.Time) error {
	const op = "rental.Conversation.Assign"
	switch {
	case userID == "":
		return Errorf(op, KindInvalid, "需要指定店员 (no staff member)")
	case c.State == ConversationResolved:
		return Errorf(op, KindConflict, "会话 #%s 已结束 (conversation is resolved)", c.Code())
	}
	if c.Assignee != userID {
		c.AssignedAt = at
	}
	c.Assignee, c.State = userID, ConversationAssigned
	return nil
}

// Unassign puts a live conversation back in the queue.
func (c *Conversation) Unassign() {
	if c.Live() {
		c.Assignee, c.State = "", ConversationOpen
	}
}

// Resolve closes the conversation; the customer is then asked for a rating.
func (c *Conversation) Resolve(by string, at time.Time) error {
	if c.State == ConversationResolved {
		return Errorf("rental.Conversation.Resolve", KindConflict, "会话 #%s 已经结束了 (already resolved)", c.Code())
	}
	c.State, c.ResolvedAt, c.ResolvedBy, c.RatingAskedAt = ConversationResolved, at, by, at
	return nil
}

// DefaultRatingWindow is how long after closing a conversation a bare
// "1"–"5" from the customer counts as their rating.
const DefaultRatingWindow = 30 * time.Minute

// AwaitsRating reports whether a message at `at` may be the rating the
// customer was asked for.
func (c *Conversation) AwaitsRating(at time.Time, window time.Duration) bool {
	return c.State == ConversationResolved && c.Rating == 0 && !c.RatingAskedAt.IsZero() &&
		!at.Before(c.RatingAskedAt) && at.Sub(c.RatingAskedAt) <= window
}

// Rate stores the customer's rating.
func (c *Conversation) Rate(score int, at time.Time) error {
	const op = "rental.Conversation.Rate"
	switch {
	case score < 1 || score > 5:
		return Errorf(op, KindInvalid, "评分应为 1–5 (rating must be 1–5)")
	case c.State != ConversationResolved:
		return Errorf(op, KindConflict, "会话还没有结束 (conversation not resolved)")
	case c.Rating != 0:
		return Errorf(op, KindConflict, "已经评过分了 (already rated)")
	}
	c.Rating, c.RatedAt = score, at
	return nil
}

// WindowOpen reports whether WeChat still lets the shop write to the
// customer at now, as far as we know: the upstream's 45015 is the final
// word.
func (c *Conversation) WindowOpen(now time.Time) bool {
	return !c.LastCustomerAt.IsZero() && now.Sub(c.LastCustomerAt) < CustomerServiceWindow
}

// AwayReplyDue reports whether the customer may be told again that nobody
// is available (at most once per interval).
func (c *Conversation) AwayReplyDue(now time.Time, interval time.Duration) bool {
	return c.AwayReplyAt.IsZero() || now.Sub(c.AwayReplyAt) >= interval
}

// ParseRating reads a customer's answer to the rating question: "5",
// "５", "5分", "5星", "4 分". Anything else is not a rating.
func ParseRating(text string) (int, bool) {
	s := strings.TrimSpace(chatFoldWidth(text))
	for _, suffix := range []string{"分", "星"} {
		s = strings.TrimSpace(strings.TrimSuffix(s, suffix))
	}
	if len(s) != 1 || s[0] < '1' || s[0] > '5' {
		return 0, false
	}
	return int(s[0] - '0'), true
}

// CustomerLabel is how staff see a customer in WeCom: the member's name,
// else the masked phone, else 顾客 and the member number.
func CustomerLabel(m Member) string {
	switch {
	case strings.TrimSpace(m.Name) != "":
		return strings.TrimSpace(m.Name)
	case m.Phone != "":
		masked := MaskPhone(m.Phone)
		if len(m.Phone) == 13 && strings.HasPrefix(m.Phone, "86") {
			masked = masked[2:] // mainland numbers read better without the country code
		}
		return masked
	}
	return "顾客" + strconv.FormatInt(int64(m.ID), 10)
}
