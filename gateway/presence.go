package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Presence: whether staff can answer now, for assignment and for what
// customers are told.
//
// A staff member is
//
//   - offline when off duty (/off in WeCom, or the console's switch), or
//     outside support hours without having been seen lately;
//   - online when on duty and seen lately: a console heartbeat within
//     HeartbeatTTL (the console sends one every 20 s over /ws) or activity
//     in the WeCom app (any message or command) within ActivityTTL;
//   - away when on duty, inside support hours, but not seen lately: WeCom
//     still pushes new conversations to their phone, so they are assigned,
//     but customers are told a reply takes longer.
//
// Online and away staff take conversations (BridgeOptions.Presence);
// offline ones do not, so outside hours the customer gets the honest
// "we are closed, back at 9:00" auto-reply (BridgeOptions.AwayText).
// The duty flag lives in the database; the sightings live in Redis when
// configured (every instance sees the same), in this process otherwise.

// PresenceStore keeps when staff (and customers in the app) were last
// seen. adapters/redis has the shared one; nil means in this process.
type PresenceStore interface {
	Touch(ctx context.Context, userID, kind string, at time.Time) error
	Snapshot(ctx context.Context) (map[string]map[string]time.Time, error)
	// Prune forgets sightings older than before.
	Prune(ctx context.Context, before time.Time) error
}

// Sighting kinds.
const (
	seenHeartbeat = "hb"  // a console heartbeat
	seenActivity  = "act" // a message or command in the WeCom app
	seenApp       = "app" // a customer with the in-app chat open (id "m:<member>")
)

// customerTTL: a customer seen in the app this recently reads replies
// there; the live channel refreshes the sighting every 30 s.
const customerTTL = 75 * time.Second

// Staff presence states.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
)

// PresenceOptions configure Presence. DB is required.
type PresenceOptions struct {
	DB     *store.DB
	Store  PresenceStore // nil: in process
	Logger *slog.Logger
	Now    func() time.Time
	// Hours are the support hours. Nil: the shop's opening hours from the
	// owner's settings (read again every minute).
	Hours *rental.OpeningHours
	// HeartbeatTTL (default 60 s) and ActivityTTL (default 15 min): how
	// long a sighting keeps a staff member online.
	HeartbeatTTL time.Duration
	ActivityTTL  time.Duration
	// ReplyOnline and ReplyAway are the reply times customers are promised
	// (default 2 and 10 minutes).
	ReplyOnline time.Duration
	ReplyAway   time.Duration
	// Changed, when set, is called when what customers would be told
	// changes (the live channel's "presence" event).
	Changed func()
}

// Presence tracks staff presence.
type Presence struct {
	o   PresenceOptions
	log *slog.Logger

	mu      sync.Mutex
	seen    map[string]map[string]time.Time // userid → kind → when
	hours   rental.OpeningHours
	hoursAt time.Time
	last    PresenceView
}

// NewPresence builds a Presence.
func NewPresence(o PresenceOptions) (*Presence, error) {
	if o.DB == nil {
		return nil, rental.Errorf("gateway.NewPresence", rental.KindInvalid, "presence needs the database")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = time.Minute
	}
	if o.ActivityTTL <= 0 {
		o.ActivityTTL = 15 * time.Minute
	}
	if o.ReplyOnline <= 0 {
		o.ReplyOnline = 2 * time.Minute
	}
	if o.ReplyAway <= 0 {
		o.ReplyAway = 10 * time.Minute
	}
	p := &Presence{o: o, log: o.Logger.With("component", "presence"), seen: map[string]map[string]time.Time{}}
	if o.Hours != nil {
		p.hours, p.hoursAt = *o.Hours, time.Now().Add(100*365*24*time.Hour)
	} else {
		p.hours = rental.DefaultShopSettings().Hours
	}
	return p, nil
}

// ParseSupportHours reads TACKLEGATE_SUPPORT_HOURS: "shop" (nil: the
// shop's opening hours), "always", or "09:00-21:00" every day.
func ParseSupportHours(v string) (*rental.OpeningHours, error) {
	switch v {
	case "", "shop":
		return nil, nil
	case "always":
		h := rental.EveryDay(0, 24*60)
		return &h, nil
	}
	if len(v) != 11 || v[5] != '-' {
		return nil, rental.Errorf("gateway.ParseSupportHours", rental.KindInvalid, "%q is not shop, always or HH:MM-HH:MM", v)
	}
	open, err := rental.ParseClock(v[:5])
	if err != nil {
		return nil, err
	}
	closing, err := rental.ParseClock(v[6:])
	if err != nil {
		return nil, err
	}
	h := rental.EveryDay(open, closing)
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

func (p *Presence) now() time.Time { return p.o.Now().UTC() }

// Heartbeat records a console heartbeat from a staff member.
func (p *Presence) Heartbeat(userID string) { p.touch(userID, seenHeartbeat) }

// Activity records a staff member's message or command in WeCom.
func (p *Presence) Activity(userID string) { p.touch(userID, seenActivity) }

func (p *Presence) touch(userID, kind string) {
	if userID == "" {
		return
	}
	at := p.now()
	p.mu.Lock()
	if p.seen[userID] == nil {
		p.seen[userID] = map[string]time.Time{}
	}
	before := p.seen[userID][kind]
	if at.After(before) {
		p.seen[userID][kind] = at
	}
	p.mu.Unlock()
	if p.o.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := p.o.Store.Touch(ctx, userID, kind, at); err != nil {
			p.log.Warn("presence: cannot share a sighting through Redis", "error", err)
		}
	}
	if kind != seenApp && at.Sub(before) > p.o.HeartbeatTTL/2 {
		// Possibly a change of state (first heartbeat, back after a
		// while): tell customers now rather than at the next refresh.
		p.check(context.Background())
	}
}

// CustomerSeen records that a customer has the in-app chat open (a live
// socket, a chat request).
func (p *Presence) CustomerSeen(member rental.MemberID) {
	p.touch("m:"+strconv.FormatInt(int64(member), 10), seenApp)
}

// CustomerInApp reports whether the customer was seen in the app lately:
// replies to their in-app conversation are then read there; otherwise they
// go through WeChat (BridgeOptions.CustomerInApp).
func (p *Presence) CustomerInApp(member rental.MemberID) bool {
	p.mu.Lock()
	at := p.seen["m:"+strconv.FormatInt(int64(member), 10)][seenApp]
	p.mu.Unlock()
	return !at.IsZero() && p.now().Sub(at) < customerTTL
}

// prune forgets sightings older than a day, here and in the store.
func (p *Presence) prune(ctx context.Context) {
	cut := p.now().Add(-24 * time.Hour)
	p.mu.Lock()
	for user, kinds := range p.seen {
		for k, at := range kinds {
			if at.Before(cut) {
				delete(kinds, k)
			}
		}
		if len(kinds) == 0 {
			delete(p.seen, user)
		}
	}
	p.mu.Unlock()
	if p.o.Store != nil {
		if err := p.o.Store.Prune(ctx, cut); err != nil && ctx.Err() == nil {
			p.log.Warn("presence: cannot prune old sightings in Redis", "error", err)
		}
	}
}

// Run refreshes the shared sightings and the support hours, and notices
// changes that time alone causes (a heartbeat expiring, closing time),
// until ctx ends.
func (p *Presence) Run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		p.refresh(ctx)
		p.check(ctx)
		if time.Since(lastPrune) > 10*time.Minute {
			lastPrune = time.Now()
			p.prune(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Presence) refresh(ctx context.Context) {
	if p.o.Store != nil {
		snap, err := p.o.Store.Snapshot(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("presence: cannot read sightings from Redis", "error", err)
			}
		} else {
			p.mu.Lock()
			for user, kinds := range snap {
				if p.seen[user] == nil {
					p.seen[user] = map[string]time.Time{}
				}
				for k, at := range kinds {
					if at.After(p.seen[user][k]) {
						p.seen[user][k] = at
					}
				}
			}
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	due := time.Since(p.hoursAt) > time.Minute
	p.mu.Unlock()
	if due {
		s, err := p.o.DB.ShopSettings(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("presence: cannot read the shop's opening hours", "error", err)
			}
			return
		}
		p.mu.Lock()
		p.hours, p.hoursAt = s.Hours, time.Now()
		p.mu.Unlock()
	}
}

// check calls Changed when what customers are told has changed.
func (p *Presence) check(ctx context.Context) {
	v, err := p.Status(ctx)
	if err != nil {
		return
	}
	p.mu.Lock()
	changed := v.Status != p.last.Status || v.StaffOnline != p.last.StaffOnline || v.Text != p.last.Text
	p.last = v
	p.mu.Unlock()
	if changed && p.o.Changed != nil {
		p.o.Changed()
	}
}

// StaffStatus says whether one staff member is online, away or offline.
func (p *Presence) StaffStatus(l rental.StaffLoad) string {
	return p.statusAt(l, p.now())
}

func (p *Presence) statusAt(l rental.StaffLoad, now time.Time) string {
	if !l.OnDuty {
		return PresenceOffline
	}
	p.mu.Lock()
	seen := p.seen[l.UserID]
	hb, act := seen[seenHeartbeat], seen[seenActivity]
	inHours := p.hours.IsOpen(now)
	p.mu.Unlock()
	switch {
	case !hb.IsZero() && now.Sub(hb) < p.o.HeartbeatTTL:
		return PresenceOnline
	case !act.IsZero() && now.Sub(act) < p.o.ActivityTTL:
		return PresenceOnline
	case inHours:
		return PresenceAway
	}
	return PresenceOffline
}

// CanTake is the bridge's BridgeOptions.Presence: online and away staff
// take conversations.
func (p *Presence) CanTake(l rental.StaffLoad) bool {
	return p.StaffStatus(l) != PresenceOffline
}

// PresenceView is what customers see: GET /api/v1/presence and the live
// channel's "presence" event.
type PresenceView struct {
	Status               string `json:"status"`
	Text                 string `json:"text"`
	ExpectedReplySeconds int    `json:"expected_reply_seconds"`
	StaffOnline          int    `json:"staff_online"`
	StaffAway            int    `json:"staff_away"`
	// NextOpening is when support hours start again, when closed now.
	NextOpening *time.Time `json:"next_opening,omitempty"`
}

// Status sums staff presence up for customers.
func (p *Presence) Status(ctx context.Context) (PresenceView, error) {
	loads, err := p.o.DB.StaffLoads(ctx)
	if err != nil {
		return PresenceView{}, err
	}
	now := p.now()
	var v PresenceView
	for _, l := range loads {
		switch p.statusAt(l, now) {
		case PresenceOnline:
			v.StaffOnline++
		case PresenceAway:
			v.StaffAway++
		}
	}
	switch {
	case v.StaffOnline > 0:
		v.Status = PresenceOnline
		v.ExpectedReplySeconds = int(p.o.ReplyOnline / time.Second)
		v.Text = fmt.Sprintf("客服在线，通常 %s内回复", presenceMinutes(p.o.ReplyOnline))
	case v.StaffAway > 0:
		v.Status = PresenceAway
		v.ExpectedReplySeconds = int(p.o.ReplyAway / time.Second)
		v.Text = fmt.Sprintf("客服暂时离开，通常 %s内回复", presenceMinutes(p.o.ReplyAway))
	default:
		v.Status = PresenceOffline
		v.Text = p.AwayText(now)
		p.mu.Lock()
		next, ok := p.hours.NextOpening(now)
		inHours := p.hours.IsOpen(now)
		p.mu.Unlock()
		if ok && !inHours {
			v.ExpectedReplySeconds = int(next.Sub(now) / time.Second)
			v.NextOpening = &next
		}
	}
	return v, nil
}

func presenceMinutes(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d 秒", int(d/time.Second))
	}
	return fmt.Sprintf("%d 分钟", int(d/time.Minute))
}

// AwayText is the auto-reply when nobody can answer
// (BridgeOptions.AwayText): inside support hours that nobody is free yet;
// outside, when they open again.
func (p *Presence) AwayText(now time.Time) string {
	p.mu.Lock()
	hours := p.hours
	p.mu.Unlock()
	if hours.IsOpen(now) {
		return "客服暂时不在线，您可以先留言，我们会尽快回复您。"
	}
	next, ok := hours.NextOpening(now)
	if !ok {
		return rental.TextAwayReply
	}
	return "客服已下班，" + presenceWhen(now, next) + " 后回复，您可以先留言。"
}

// presenceWhen says when `at` is, seen from now, in Shanghai: "今天 9:00",
// "明天 9:00", "周六 9:00".
func presenceWhen(now, at time.Time) string {
	sh := rental.Shanghai()
	a := at.In(sh)
	clock := fmt.Sprintf("%d:%02d", a.Hour(), a.Minute())
	switch rental.DateOf(at) {
	case rental.DateOf(now):
		return "今天 " + clock
	case rental.DateOf(now).AddDays(1):
		return "明天 " + clock
	}
	return [7]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}[a.Weekday()] + " " + clock
}

// mountPresence adds GET /api/v1/presence.
func (s *Server) mountPresence(p *Presence) {
	s.api("GET", "/presence", anyone, func(c *fiber.Ctx) error {
		v, err := p.Status(c.UserContext())
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(v)
	})
}
