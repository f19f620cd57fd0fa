package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// The message bridge: customers write in the mini-program's customer
// service (WeChat), staff answer in the WeCom app.
//
// Nothing is lost: the callbacks are stored before WeChat/WeCom is answered
// (callbacks.go); the bridge's processor then handles each stored callback
// once, in one transaction that marks it processed, appends the message to
// its conversation and enqueues the sends it causes in the outbox. A crash
// before the commit leaves the callback unprocessed, and it is handled
// again from scratch; a failure is recorded on the callback (attempts,
// last_error) and retried with backoff, holding that sender's later
// messages back so that a conversation keeps the order they were sent in.
// Media is downloaded before that transaction; media that cannot be had
// after the last attempt (or has expired) is noted in the message instead.
//
// Nothing is sent twice: every send goes through the outbox, and what a
// send delivers is recorded per message and side (chat_deliveries) right
// after the upstream accepted it, with a context a shutdown does not
// cancel. A redelivered outbox row finds the messages already sent and does
// nothing. The one gap left is a crash between the upstream's answer and
// that record, which no client of an API without idempotency keys can
// close. A periodic sweep flushes messages that waited too long, so a
// message outlives an outbox row that gave up.
//
// Order is kept: a conversation's messages go out, per side, by one flush
// at a time (a lease on the conversation row), in sequence order.
//
// The rules, as decided here:
//
//   - One live conversation per customer. /close resolves it for good (its
//     transcript never grows after); the customer's next message opens a
//     new conversation pointing at the old one, assigned back to the same
//     staff member when on duty. A bare "1"–"5" within RatingWindow of the
//     close is the rating and stays in the closed conversation.
//   - Assignment (rental.ChooseStaff): the customer's last staff member if
//     on duty and under MaxOpen, else the on-duty member with the fewest
//     live conversations under MaxOpen. On duty: registered and active, and
//     not /off, and online or away by presence (presence.go: heartbeats,
//     WeCom activity, support hours). A conversation stays with its
//     staff member while they are on duty; after /off, the customer's next
//     message moves it to someone on duty, if anyone is.
//   - Nobody on duty: the customer gets AwayText, at most once an hour per
//     conversation, and the conversation waits in the queue; /on gives the
//     queue to whoever comes back. Everyone full: the customer is told they
//     are queued, on-duty staff are told once, /close hands the next over.
//   - Staff plain text goes to their current conversation: the one they
//     last replied to, took or switched to with "#A7", or the one they were
//     just given when they had none.
//   - WeChat's rules: 45015 (48-hour window closed) is never retried: with
//     a subscribe template (BridgeOptions.Notice) the customer gets a
//     subscribe message and the reply is "notified", going out when they
//     write again or open the chat; without a consent it "failed". 45047
//     (five replies per customer message) holds the rest until the customer
//     writes again or opens the chat. Staff are told in WeCom each time.
//     Network failures, 5xx, -1 and quota errors are retried by the outbox.
//   - Retention (RetainFor, TACKLEGATE_CHAT_RETENTION_DAYS): messages are
//     append-only evidence, so old conversations are not deleted but
//     crypto-shredded: each conversation is sealed with a key of its own,
//     and destroying that key makes its texts and media unreadable for
//     good while the hash chain still verifies (adapters/store/chatkeys.go
//     says why and what it does not cover: backups).
//   - The in-app chat (chat.go) files messages by the same rules; replies
//     to a conversation the customer last wrote to from the app are read
//     there while they have it open, and go through WeChat otherwise.
//   - Voice: WeChat voice arrives as AMR and is kept as delivered, with its
//     format and length, and forwarded to WeCom as voice. Mini-program
//     customer service has no voice message type, so a staff voice note is
//     kept in the conversation and the customer is told in text that one
//     was left.

// Outbox kinds of the bridge. Payloads are JSON.
const (
	// KindBridgeToStaff flushes a conversation's customer messages to its
	// assigned staff member in WeCom. Payload: bridgeFlush.
	KindBridgeToStaff = "bridge.to_staff"
	// KindBridgeToCustomer flushes a conversation's replies to the customer
	// in WeChat. Payload: bridgeFlush.
	KindBridgeToCustomer = "bridge.to_customer"
	// KindBridgeSubscribe is the 48-hour fallback: a subscribe message
	// telling the customer a reply waits. Payload: bridgeSubscribe.
	KindBridgeSubscribe = "bridge.subscribe"
	// KindBridgeNotice is a text to staff in WeCom that is not a customer
	// message: command answers, notices. Payload: bridgeNotice.
	KindBridgeNotice = "bridge.notice"
)

type bridgeFlush struct {
	Conversation rental.ConversationID `json:"conversation"`
}

type bridgeSubscribe struct {
	Conversation rental.ConversationID  `json:"conversation"`
	Messages     []rental.ChatMessageID `json:"messages"`
}

type bridgeNotice struct {
	To   []string `json:"to"`
	Text string   `json:"text"`
}

// BridgeWeChat is what the bridge needs of the mini-program client.
type BridgeWeChat interface {
	AppID() string
	GetMedia(ctx context.Context, mediaID string) ([]byte, string, error)
	SendCustomerText(ctx context.Context, openID, text string) error
	SendCustomerImage(ctx context.Context, openID, mediaID string) error
	UploadImage(ctx context.Context, name string, r io.Reader) (string, error)
	SendSubscribe(ctx context.Context, openID, templateID, page string, data map[string]string) (int64, error)
}

// BridgeWeCom is what the bridge needs of the WeCom client.
type BridgeWeCom interface {
	GetMedia(ctx context.Context, mediaID string) ([]byte, string, error)
	SendText(ctx context.Context, touser []string, content string) (wecom.SendResult, error)
	SendImage(ctx context.Context, touser []string, mediaID string) (wecom.SendResult, error)
	SendVoice(ctx context.Context, touser []string, mediaID string) (wecom.SendResult, error)
	UploadMedia(ctx context.Context, mediaType, name string, r io.Reader) (string, error)
}

var (
	_ BridgeWeChat = (*wechat.Client)(nil)
	_ BridgeWeCom  = (*wecom.Client)(nil)
)

// SubscribeNotice is the subscribe message sent when a reply falls outside
// WeChat's 48-hour window (45015) and the customer granted one.
type SubscribeNotice struct {
	TemplateID string
	Page       string // the mini-program page it opens
	// Data fills the template's keywords.
	Data func(NoticeFacts) map[string]string
}

// NoticeFacts are what a subscribe notice can say.
type NoticeFacts struct {
	Code     string // "A7"
	Customer string
	Staff    string // the staff member's name
	Excerpt  string // the start of the reply
	At       time.Time
}

// DemoReplyTemplate is the template of DefaultSubscribeNotice: the demo
// mini-program's 归还提醒 (thing1, time2, character_string3, thing4), which
// the simulator knows as wxsim.DemoTemplateReturnReminder. A real shop
// applies for a 客服回复提醒-style template in the mini-program console and
// sets BridgeOptions.Notice; until then, sending to real WeChat fails with
// 40037 and the reply is marked failed with that reason, and staff are told.
const DemoReplyTemplate = "tgRETURNreminder0000000000000000000000000001"

// DefaultSubscribeNotice fills DemoReplyTemplate: 物品名称 → "店员回复了您的咨询",
// 时间 → when, 单号 → the conversation code, 备注 → the start of the reply
// (thing values are at most 20 characters).
func DefaultSubscribeNotice() *SubscribeNotice {
	return &SubscribeNotice{
		TemplateID: DemoReplyTemplate,
		Page:       "pages/index/index",
		Data: func(f NoticeFacts) map[string]string {
			excerpt := []rune(f.Excerpt)
			if len(excerpt) > 20 {
				excerpt = append(excerpt[:19], '…')
			}
			if len(excerpt) == 0 {
				excerpt = []rune("请进入小程序查看")
			}
			return map[string]string{
				"thing1":            "店员回复了您的咨询",
				"time2":             f.At.In(bridgeZone).Format("2006-01-02 15:04"),
				"character_string3": f.Code,
				"thing4":            string(excerpt),
			}
		},
	}
}

// BridgeOptions configure the bridge. DB, WeChat and WeCom are required.
type BridgeOptions struct {
	DB     *store.DB
	WeChat BridgeWeChat
	WeCom  BridgeWeCom
	Logger *slog.Logger
	// Now is the clock of the conversation rules (the 48-hour window, the
	// rating window, the hourly auto-reply): the simulator's in demo and
	// tests. Default time.Now. Leases and retries use the wall clock.
	Now func() time.Time
	// Poll is how often the processor looks for stored callbacks (default
	// 500 ms).
	Poll time.Duration
	// MaxOpen is how many live conversations assignment gives one staff
	// member (default rental.DefaultMaxOpen).
	MaxOpen int
	// RatingWindow: how long after /close a bare 1–5 is the rating
	// (default rental.DefaultRatingWindow).
	RatingWindow time.Duration
	// AwayInterval: the "nobody is available" auto-reply is sent at most
	// once per conversation per interval (default 1 h).
	AwayInterval time.Duration
	// AwayText is the auto-reply when nobody is on duty (default
	// rental.TextAwayReply). The hook for opening hours. When Assistant
	// answers a message, its answer replaces this reply.
	AwayText func(now time.Time) string
	// Notice is the 48-hour fallback; nil: DefaultSubscribeNotice. Set
	// NoNotice to have none (outside the window replies then fail).
	Notice   *SubscribeNotice
	NoNotice bool
	// Video, when set, makes /video open a room and returns the links for
	// the customer and the staff member (media/ rooms come later).
	Video func(ctx context.Context, c rental.Conversation, staffUserID string) (customerURL, staffURL string, err error)
	// CallTimeout bounds one upstream call (default 20 s). In-flight calls
	// are not cancelled by a shutdown, so that what went out is recorded.
	CallTimeout time.Duration
	// MaxAttempts: after this many failed attempts at a callback whose media
	// cannot be downloaded, the message is stored without the media rather
	// than lost (default 8, about 10 minutes of backoff).
	MaxAttempts int
	// BaseDelay is the first retry delay of a failed callback (default 1 s,
	// doubling, at most 5 min).
	BaseDelay time.Duration
	// Presence, when set, says whether a staff member can take
	// conversations now (Presence.CanTake: console heartbeats, working
	// hours, Redis across instances). Default: the /on and /off flag.
	Presence func(l rental.StaffLoad) bool
	// Changed, when set, is told after each commit which conversations
	// changed (new messages, assignment, state): the hook for live updates
	// of the staff console over /ws.
	Changed func(ids []rental.ConversationID)
	// SweepEvery is how often messages that have waited for delivery longer
	// than StaleAfter get a new flush (default 1 min and 5 min): the outbox
	// gives a row up after about six hours of failures, the messages stay.
	SweepEvery time.Duration
	StaleAfter time.Duration
	// Assistant, when set, answers customers' text and photos when its
	// Policy says so (nobody on duty in "unattended" mode; every message of
	// a conversation no person handles in "first" mode), in place of the
	// "nobody is available" auto-reply. It is asked after the message's
	// transaction commits; its reply goes out through the outbox like any
	// other (author "assistant"), and on a hand-off the conversation goes
	// to people as it would without an assistant. See bridge_assistant.go.
	Assistant *assistant.Desk
	// Seen, when set, is told each time a staff member writes in the WeCom
	// app (a reply or a command): presence counts it as activity.
	Seen func(userID string)
	// ReassignAfter, when positive, moves a conversation whose customer has
	// waited that long for its assigned staff member's first answer to
	// another staff member who can take it; both are told (bridge_reassign.go).
	ReassignAfter time.Duration
	// CustomerInApp, when set, says whether a customer has the in-app chat
	// open (Presence.CustomerInApp). A reply to a conversation the customer
	// last wrote to from the app is read there while they are; when they
	// are not, and they have written from WeChat, it goes through WeChat
	// (with its 48-hour rule). Unset: always in the app.
	CustomerInApp func(member rental.MemberID) bool
	// RetainFor, when positive, destroys the content of conversations
	// resolved longer ago than this (crypto-shredding, see
	// adapters/store/chatkeys.go); checked hourly.
	RetainFor time.Duration

	// AssistantFor, when set, says whether the assistant may answer this
	// member at all (the "assistant" feature flag; AssistantGate.Serves).
	// It is called inside the processing transaction, so it must not
	// touch the database.
	AssistantFor func(m rental.Member) bool
	// ShopHours, when true, gives the assistant's policy the shop's
	// opening hours (read in the processing transaction): out of hours it
	// answers first.
	ShopHours bool
}

// Bridge is the message bridge: the processor of stored callbacks (Run) and
// the outbox handlers that send (Handlers).
type Bridge struct {
	db     *store.DB
	wechat BridgeWeChat
	wecom  BridgeWeCom
	log    *slog.Logger
	opts   BridgeOptions
	notice *SubscribeNotice
	asks   sync.WaitGroup // assistant turns in progress; Run waits for them
	kick   chan struct{}  // a callback was stored: process now (WatchInbound)
}

// NewBridge checks the options and builds the bridge.
func NewBridge(o BridgeOptions) (*Bridge, error) {
	if o.DB == nil || o.WeChat == nil || o.WeCom == nil {
		return nil, rental.Errorf("gateway.NewBridge", rental.KindInvalid, "the message bridge needs the database and both the mini-program and WeCom channels")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = rental.DefaultMaxOpen
	}
	if o.RatingWindow <= 0 {
		o.RatingWindow = rental.DefaultRatingWindow
	}
	if o.AwayInterval <= 0 {
		o.AwayInterval = time.Hour
	}
	if o.AwayText == nil {
		o.AwayText = func(time.Time) string { return rental.TextAwayReply }
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 20 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = time.Second
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 5 * time.Minute
	}
	b := &Bridge{db: o.DB, wechat: o.WeChat, wecom: o.WeCom, log: o.Logger.With("component", "bridge"), opts: o, notice: o.Notice, kick: make(chan struct{}, 1)}
	if b.notice == nil && !o.NoNotice {
		b.notice = DefaultSubscribeNotice()
	}
	return b, nil
}

// bridgeZone is how times are shown to people (China has no DST).
var bridgeZone = time.FixedZone("CST", 8*3600)

func (b *Bridge) now() time.Time { return b.opts.Now().UTC() }

// Run processes stored callbacks until ctx ends, and now and then sends
// again what waited too long.
func (b *Bridge) Run(ctx context.Context) {
	t := time.NewTicker(b.opts.Poll)
	defer t.Stop()
	defer b.asks.Wait()
	lastSweep, lastReassign, lastRetain := time.Now(), time.Now(), time.Time{}
	for {
		for b.ProcessPending(ctx) > 0 && ctx.Err() == nil {
		}
		if time.Since(lastSweep) >= b.opts.SweepEvery {
			lastSweep = time.Now()
			b.Sweep(ctx)
		}
		if b.opts.RetainFor > 0 && time.Since(lastRetain) >= time.Hour {
			lastRetain = time.Now()
			b.Retain(ctx)
		}
		if b.opts.ReassignAfter > 0 && time.Since(lastReassign) >= b.reassignEvery() {
			lastReassign = time.Now()
			b.Reassign(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
	}
}

// WatchInbound wraps the callbacks' store so that a newly stored WeChat or
// WeCom message is processed at once rather than at the next poll (the
// poll stays, for callbacks stored by another instance).
func (b *Bridge) WatchInbound(next rental.InboundStore) rental.InboundStore {
	return &bridgeWatched{InboundStore: next, b: b}
}

type bridgeWatched struct {
	rental.InboundStore
	b *Bridge
}

func (w *bridgeWatched) SaveInbound(ctx context.Context, in *rental.Inbound) (bool, error) {
	created, err := w.InboundStore.SaveInbound(ctx, in)
	if err == nil && created && (in.Channel == rental.ChannelWeChat || in.Channel == rental.ChannelWeCom) {
		select {
		case w.b.kick <- struct{}{}:
		default:
		}
	}
	return created, err
}

// ProcessPending handles the stored callbacks that are due, oldest first,
// and returns how many it handled. A sender whose earlier callback failed
// (or waits for its retry) is held back for the rest of the pass, so that
// one customer's messages are appended in the order they were sent.
func (b *Bridge) ProcessPending(ctx context.Context) int {
	refs, err := b.db.PendingInbound(ctx, []rental.Channel{rental.ChannelWeChat, rental.ChannelWeCom}, 500)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Error("bridge: cannot list stored callbacks", "error", err)
		}
		return 0
	}
	blocked := map[string]bool{}
	now, handled := time.Now(), 0
	for _, ref := range refs {
		if ctx.Err() != nil {
			break
		}
		sender := string(ref.Channel) + "\x00" + ref.From
		if blocked[sender] {
			continue
		}
		if !ref.RetryAt.IsZero() && ref.RetryAt.After(now) {
			blocked[sender] = true
			continue
		}
		if err := b.process(ctx, ref); err != nil {
			if ctx.Err() != nil {
				break
			}
			if rental.ErrorKind(err) == rental.KindInvalid && ref.Attempts+1 >= b.opts.MaxAttempts {
				// Refused as such every time (not a passing failure): give
				// up on it rather than hold the sender's later messages
				// back for ever. last_error keeps why.
				b.log.Error("bridge: giving up on a callback", "inbound", ref.ID, "channel", ref.Channel, "kind", ref.Kind, "error", err)
				if ferr := b.db.InboundGaveUp(context.WithoutCancel(ctx), ref.ID, err.Error()); ferr != nil {
					b.log.Error("bridge: cannot record a callback given up", "inbound", ref.ID, "error", ferr)
				}
				continue
			}
			blocked[sender] = true
			delay := time.Duration(float64(b.opts.BaseDelay) * math.Pow(2, float64(ref.Attempts)))
			if delay > 5*time.Minute || delay <= 0 {
				delay = 5 * time.Minute
			}
			level := slog.LevelWarn
			if ref.Attempts+1 >= b.opts.MaxAttempts {
				level = slog.LevelError
			}
			b.log.Log(ctx, level, "bridge: processing a callback failed; will retry", "inbound", ref.ID, "channel", ref.Channel, "kind", ref.Kind, "attempt", ref.Attempts+1, "retry_in", delay, "error", err)
			if ferr := b.db.InboundFailed(context.WithoutCancel(ctx), ref.ID, err.Error(), time.Now().Add(delay)); ferr != nil {
				b.log.Error("bridge: cannot record a failed callback", "inbound", ref.ID, "error", ferr)
			}
			continue
		}
		handled++
	}
	return handled
}

// Sweep enqueues a flush for conversations whose messages have waited
// for delivery longer than StaleAfter (their outbox row gave up, or was
// lost with a replayed backup): nothing stays undelivered for want of a
// row. A flush of what was sent meanwhile sends nothing.
func (b *Bridge) Sweep(ctx context.Context) {
	before := time.Now().Add(-b.opts.StaleAfter)
	cause := "sweep" + strconv.FormatInt(time.Now().Unix()/60, 10)
	for _, side := range []string{store.SideCustomer, store.SideStaff} {
		convs, err := b.db.StaleWaiting(ctx, side, before, 100)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("bridge: cannot look for stale deliveries", "error", err)
			}
			return
		}
		if len(convs) == 0 {
			continue
		}
		err = b.inTx(ctx, cause, func(t *btx) error {
			for _, c := range convs {
				if err := t.flush(side, c, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.log.Error("bridge: cannot enqueue stale deliveries", "side", side, "error", err)
			continue
		}
		b.log.Warn("bridge: sending again messages that waited too long", "side", side, "conversations", len(convs))
	}
}

func (b *Bridge) process(ctx context.Context, ref store.InboundRef) error {
	in, err := b.db.Inbound(ctx, ref.ID)
	if err != nil {
		return err
	}
	if in.ProcessedAt != nil {
		return nil
	}
	switch in.Channel {
	case rental.ChannelWeChat:
		return b.customerInbound(ctx, ref, in)
	case rental.ChannelWeCom:
		return b.staffInbound(ctx, ref, in)
	}
	return b.claimOnly(ctx, in.ID)
}

// claimOnly marks a callback processed that causes nothing (an event the
// bridge does not act on, or a payload it cannot read).
func (b *Bridge) claimOnly(ctx context.Context, id int64) error {
	return b.db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
		_, err := tx.ClaimInbound(id)
		return err
	})
}

// btx is one processing transaction with the bridge's helpers.
type btx struct {
	*store.BridgeTx
	b       *Bridge
	now     time.Time
	cause   string // prefix of the outbox keys this transaction enqueues
	notices int
	ask     *askTurn                       // set when the assistant is to answer, after the commit
	console string                         // the staff member acting from the console: their own notices are not sent to WeCom
	touched map[rental.ConversationID]bool // conversations changed, for BridgeOptions.Changed
}

func (b *Bridge) inTx(ctx context.Context, cause string, fn func(t *btx) error) error {
	var touched map[rental.ConversationID]bool
	err := b.db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
		t := &btx{BridgeTx: tx, b: b, now: b.now(), cause: cause, touched: map[rental.ConversationID]bool{}}
		touched = t.touched
		return fn(t)
	})
	if err == nil && len(touched) > 0 && b.opts.Changed != nil {
		ids := make([]rental.ConversationID, 0, len(touched))
		for id := range touched {
			ids = append(ids, id)
		}
		b.opts.Changed(ids)
	}
	return err
}

// Append records the conversation as changed.
func (t *btx) Append(c *rental.Conversation, m *rental.ChatMessage) error {
	if err := t.BridgeTx.Append(c, m); err != nil {
		return err
	}
	t.touched[c.ID] = true
	return nil
}

// SaveConversation records the conversation as changed.
func (t *btx) SaveConversation(c *rental.Conversation) error {
	t.touched[c.ID] = true
	return t.BridgeTx.SaveConversation(c)
}

// SetDelivery records the message's conversation as changed.
func (t *btx) SetDelivery(msg rental.ChatMessageID, side string, d rental.Delivery, conv rental.ConversationID) error {
	t.touched[conv] = true
	return t.BridgeTx.SetDelivery(msg, side, d)
}

// StaffLoads applies BridgeOptions.Presence to the stored duty flags.
func (t *btx) StaffLoads() ([]rental.StaffLoad, error) {
	loads, err := t.BridgeTx.StaffLoads()
	if err != nil || t.b.opts.Presence == nil {
		return loads, err
	}
	for i := range loads {
		loads[i].OnDuty = t.b.opts.Presence(loads[i])
	}
	return loads, nil
}

// notify enqueues a text to staff. Keys derive from the transaction's
// cause, so a retried transaction enqueues the same keys.
func (t *btx) notify(to []string, text string) error {
	if t.console != "" {
		kept := to[:0:0]
		for _, u := range to {
			if u != t.console {
				kept = append(kept, u)
			}
		}
		to = kept
	}
	if len(to) == 0 || text == "" {
		return nil
	}
	t.notices++
	p, _ := json.Marshal(bridgeNotice{To: to, Text: text})
	return t.Enqueue(KindBridgeNotice, KindBridgeNotice+":"+t.cause+":"+strconv.Itoa(t.notices), p)
}

// flush enqueues delivery of a conversation's due messages to one side;
// trigger (a message id) makes the key unique per cause.
func (t *btx) flush(side string, conv rental.ConversationID, trigger rental.ChatMessageID) error {
	kind := KindBridgeToCustomer
	if side == store.SideStaff {
		kind = KindBridgeToStaff
	}
	p, _ := json.Marshal(bridgeFlush{Conversation: conv})
	return t.Enqueue(kind, fmt.Sprintf("%s:%d:%s:%d", kind, conv, t.cause, trigger), p)
}

// label is how staff see the conversation's customer.
func (t *btx) label(c *rental.Conversation) string {
	m, err := t.Member(c.MemberID)
	if err != nil {
		return "顾客" + strconv.FormatInt(int64(c.MemberID), 10)
	}
	return rental.CustomerLabel(m)
}

// bridgeAPIError reaches the upstream error inside a client error.
func bridgeAPIError(err error) (*wechat.APIError, bool) {
	var e *wechat.APIError
	ok := errors.As(err, &e)
	return e, ok
}

// bridgeRetryable reports a send failure that may pass later: network, 5xx,
// system busy, quota per minute/day, a token refused even after the
// client's refresh. Anything that is not an upstream answer (our database,
// a cancelled context) is retried too.
func bridgeRetryable(err error) bool {
	e, ok := bridgeAPIError(err)
	if !ok {
		return true
	}
	return e.Retryable() || e.IsTokenInvalid() || e.TokenFetch
}

// reason is a failure as staff and the owner read it.
func bridgeReason(err error) string {
	if m := rental.ErrorMessage(err); m != "" {
		if e, ok := bridgeAPIError(err); ok && e.Code != 0 {
			return fmt.Sprintf("%s（错误码 %d）", m, e.Code)
		}
		return m
	}
	return "发送失败"
}
