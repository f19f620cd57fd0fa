package store

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tacklegate/tacklegate/rental"
)

// The owner's KPIs over a period [From, To): support (calls,
// conversations, the assistant) and rental outcomes, split by whether the
// order had a recorded video inspection. Rows are read once per figure and
// summed in Go, so both dialects give the same figures and days and hours
// are Shanghai's whatever the database's time zone.

// KPIPeriod is [From, To), instants (usually Shanghai midnights).
type KPIPeriod struct {
	From, To time.Time
}

// KPIs are the figures of one period.
type KPIs struct {
	From         time.Time        `json:"from"`
	To           time.Time        `json:"to"`
	Calls        CallKPIs         `json:"calls"`
	Satisfaction SatisfactionKPIs `json:"satisfaction"`
	Chat         ChatKPIs         `json:"conversations"`
	Assistant    AssistantKPIs    `json:"assistant"`
	Rental       RentalKPIs       `json:"rental"`
	QuickHelp    []QuickHelpUse   `json:"quick_help"`
}

// CallKPIs: connect rate = answered / started. Missed means never answered
// (missed, declined, or given up by the caller); calls still ringing count
// as started but not as missed.
type CallKPIs struct {
	Started         int     `json:"started"`
	Answered        int     `json:"answered"`
	Missed          int     `json:"missed"`
	ConnectRate     float64 `json:"connect_rate"` // 0 with no calls
	AvgDurationSec  float64 `json:"avg_duration_seconds"`
	P90DurationSec  float64 `json:"p90_duration_seconds"`
	MissedByHour    [24]int `json:"missed_by_hour"` // Shanghai hour the call started
	RecordedForOrds int     `json:"recorded_inspections"`
}

// Ratings is a 1–5 distribution.
type Ratings struct {
	Count        int     `json:"count"`
	Average      float64 `json:"average"`
	Distribution [5]int  `json:"distribution"` // index 0 = 1 star
}

func (r *Ratings) add(stars int) {
	if stars < 1 || stars > 5 {
		return
	}
	r.Distribution[stars-1]++
	r.Count++
}

func (r *Ratings) finish() {
	sum := 0
	for i, n := range r.Distribution {
		sum += (i + 1) * n
	}
	if r.Count > 0 {
		r.Average = kpiRound2(float64(sum) / float64(r.Count))
	}
}

// SatisfactionKPIs are the customers' ratings given in the period.
type SatisfactionKPIs struct {
	Conversations Ratings `json:"conversations"`
	Calls         Ratings `json:"calls"`
	All           Ratings `json:"all"`
}

// DayCount is a count on one Shanghai day.
type DayCount struct {
	Day       string `json:"day"` // 2026-11-25
	Customer  int    `json:"customer"`
	Staff     int    `json:"staff"`
	Assistant int    `json:"assistant"`
	System    int    `json:"system"`
	Total     int    `json:"total"`
}

// ChatKPIs cover conversations opened in the period and messages written
// in it. First response: from opening to the first message by a person
// (not the assistant, not an auto-reply).
type ChatKPIs struct {
	Opened            int            `json:"opened"`
	ByState           map[string]int `json:"by_state"`
	Responded         int            `json:"responded"`
	AvgFirstResponse  float64        `json:"avg_first_response_seconds"`
	P50FirstResponse  float64        `json:"p50_first_response_seconds"`
	P90FirstResponse  float64        `json:"p90_first_response_seconds"`
	Messages          int            `json:"messages"`
	MessagesPerDay    []DayCount     `json:"messages_per_day"`
	AnsweredByPersons int            `json:"answered_by_persons"`
}

// UnresolvedQuestion is a group of similar questions the assistant could
// not resolve.
type UnresolvedQuestion struct {
	Question string   `json:"question"` // the group's most frequent wording
	Count    int      `json:"count"`
	Variants []string `json:"variants,omitempty"` // other wordings, a few
}

// AssistantKPIs: the share not resolved is Unresolved / (Resolved +
// Unresolved); pending turns got no signal either way.
type AssistantKPIs struct {
	Turns           int                  `json:"turns"`
	Answered        int                  `json:"answered"`
	HandedOff       int                  `json:"handed_off"`
	Resolved        int                  `json:"resolved"`
	Unresolved      int                  `json:"unresolved"`
	Pending         int                  `json:"pending"`
	UnresolvedShare float64              `json:"unresolved_share"`
	TopUnresolved   []UnresolvedQuestion `json:"top_unresolved"`
}

// RentalGroup are rental outcomes of one group of orders.
type RentalGroup struct {
	Orders           int   `json:"orders"`            // paid in the period
	Revenue          int64 `json:"revenue"`           // fen: rent + late fees + damage fees, 0 for cancelled orders
	Deposits         int64 `json:"deposits"`          // fen taken
	DepositsRefunded int64 `json:"deposits_refunded"` // fen of deposit given back
	Damaged          int   `json:"damaged"`           // orders charged a damage fee
	DamageFees       int64 `json:"damage_fees"`       // fen
	Disputed         int   `json:"disputed"`          // orders whose customer raised a dispute while renting
}

// RentalKPIs split orders paid in the period by whether a video
// inspection was recorded (a recorded call for the order, or a recording
// in its evidence).
type RentalKPIs struct {
	All          RentalGroup `json:"all"`
	WithVideo    RentalGroup `json:"with_video"`
	WithoutVideo RentalGroup `json:"without_video"`
}

func kpiRound2(v float64) float64 { return math.Round(v*100) / 100 }

// kpiMillis rounds seconds to the millisecond: julianday arithmetic in
// SQLite leaves a few microseconds of floating-point noise.
func kpiMillis(sec float64) float64 { return math.Round(sec*1000) / 1000 }

// kpiPercentile is the nearest-rank percentile of sorted values.
func kpiPercentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func kpiMean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return kpiRound2(s / float64(len(v)))
}

// KPIs computes every figure of the period.
func (db *DB) KPIs(ctx context.Context, p KPIPeriod) (KPIs, error) {
	k := KPIs{From: p.From.UTC(), To: p.To.UTC()}
	if !p.From.Before(p.To) {
		return k, rental.Errorf("store.KPIs", rental.KindInvalid, "开始日期须早于结束日期 (from must be before to)")
	}
	for _, step := range []func(context.Context, KPIPeriod, *KPIs) error{db.callKPIs, db.chatKPIs, db.assistantKPIs, db.rentalKPIs} {
		if err := step(ctx, p, &k); err != nil {
			return k, err
		}
	}
	uses, err := db.QuickHelpUses(ctx, p.From, p.To)
	if err != nil {
		return k, err
	}
	k.QuickHelp = uses
	k.Satisfaction.Conversations.finish()
	k.Satisfaction.Calls.finish()
	k.Satisfaction.All.finish()
	return k, nil
}

func (db *DB) callKPIs(ctx context.Context, p KPIPeriod, k *KPIs) error {
	// Hours and durations are worked out by the database, so no row's
	// times are parsed here.
	hour, dur := `CAST(strftime('%H', started_at, '+8 hours') AS INTEGER)`, `(julianday(ended_at) - julianday(answered_at)) * 86400.0`
	if db.Dialect == Postgres {
		hour, dur = `CAST(EXTRACT(HOUR FROM started_at AT TIME ZONE 'Asia/Shanghai') AS INTEGER)`, `EXTRACT(EPOCH FROM (ended_at - answered_at))`
	}
	var rows []struct {
		State    string
		Answered bool
		Hour     int
		Duration *float64
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT state, answered_at IS NOT NULL AS answered, `+hour+` AS hour, `+dur+` AS duration FROM calls
	    WHERE started_at >= ? AND started_at < ?`, p.From.UTC(), p.To.UTC()).Scan(&rows).Error; err != nil {
		return classify("store.callKPIs", err)
	}
	c := &k.Calls
	var durations []float64
	for _, r := range rows {
		c.Started++
		switch {
		case r.Answered:
			c.Answered++
			if r.Duration != nil && *r.Duration >= 0 {
				durations = append(durations, kpiMillis(*r.Duration))
			}
		case r.State != "ringing":
			c.Missed++
			c.MissedByHour[max(0, min(r.Hour, 23))]++
		}
	}
	if c.Started > 0 {
		c.ConnectRate = float64(c.Answered) / float64(c.Started)
	}
	slices.Sort(durations)
	c.AvgDurationSec, c.P90DurationSec = kpiMean(durations), kpiPercentile(durations, 0.9)
	// Call ratings count in the period the call started.
	var rated []int
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT rating FROM calls WHERE rating > 0 AND started_at >= ? AND started_at < ?`,
		p.From.UTC(), p.To.UTC()).Scan(&rated).Error; err != nil {
		return classify("store.callKPIs", err)
	}
	for _, r := range rated {
		k.Satisfaction.Calls.add(r)
		k.Satisfaction.All.add(r)
	}
	return nil
}

func (db *DB) chatKPIs(ctx context.Context, p KPIPeriod, k *KPIs) error {
	const op = "store.chatKPIs"
	from, to := p.From.UTC(), p.To.UTC()
	c := &k.Chat
	c.ByState = map[string]int{"open": 0, "assigned": 0, "resolved": 0}
	var convs []struct {
		ID    int64
		State string
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT id, state FROM conversations WHERE opened_at >= ? AND opened_at < ?`,
		from, to).Scan(&convs).Error; err != nil {
		return classify(op, err)
	}
	// The first message by a person in each of them ("staff:<userid>"
	// authors; the assistant and auto-replies are not a response), and the
	// wait in seconds, worked out by the database.
	wait := `(julianday(MIN(m.created_at)) - julianday(c.opened_at)) * 86400.0`
	if db.Dialect == Postgres {
		wait = `EXTRACT(EPOCH FROM (MIN(m.created_at) - c.opened_at))`
	}
	var replies []struct {
		ID   int64
		Wait float64
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT c.id AS id, `+wait+` AS wait
	    FROM conversations c JOIN chat_messages m ON m.conversation_id = c.id AND m.direction = 'out' AND m.author LIKE 'staff:%'
	    WHERE c.opened_at >= ? AND c.opened_at < ? GROUP BY c.id, c.opened_at`, from, to).Scan(&replies).Error; err != nil {
		return classify(op, err)
	}
	for _, cv := range convs {
		c.Opened++
		c.ByState[cv.State]++
	}
	waits := make([]float64, 0, len(replies))
	for _, r := range replies {
		c.Responded++
		waits = append(waits, max(0, kpiMillis(r.Wait)))
	}
	slices.Sort(waits)
	c.AvgFirstResponse, c.P50FirstResponse, c.P90FirstResponse = kpiMean(waits), kpiPercentile(waits, 0.5), kpiPercentile(waits, 0.9)

	// Messages are counted per Shanghai day by the database (UTC+8 all
	// year: China has no daylight saving), so a year of chat is not read
	// row by row.
	day := `strftime('%Y-%m-%d', created_at, '+8 hours')`
	if db.Dialect == Postgres {
		day = `to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')`
	}
	var counts []struct {
		Day string
		Who string
		N   int
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT `+day+` AS day,
	        CASE WHEN direction = 'in' THEN 'customer' WHEN author LIKE 'staff:%' THEN 'staff' WHEN author = 'assistant' THEN 'assistant' ELSE 'system' END AS who,
	        COUNT(*) AS n
	    FROM chat_messages WHERE created_at >= ? AND created_at < ? GROUP BY 1, 2`, from, to).Scan(&counts).Error; err != nil {
		return classify(op, err)
	}
	days := map[string]*DayCount{}
	for d := rental.DateOf(from); d.Start().Before(to); d = d.AddDays(1) {
		s := d.String()
		days[s] = &DayCount{Day: s}
	}
	for _, m := range counts {
		dc := days[m.Day]
		if dc == nil {
			dc = &DayCount{Day: m.Day}
			days[m.Day] = dc
		}
		switch m.Who {
		case "customer":
			dc.Customer += m.N
		case "staff":
			dc.Staff += m.N
			c.AnsweredByPersons += m.N
		case "assistant":
			dc.Assistant += m.N
		default:
			dc.System += m.N
		}
		dc.Total += m.N
		c.Messages += m.N
	}
	c.MessagesPerDay = make([]DayCount, 0, len(days))
	for _, dc := range days {
		c.MessagesPerDay = append(c.MessagesPerDay, *dc)
	}
	slices.SortFunc(c.MessagesPerDay, func(a, b DayCount) int { return strings.Compare(a.Day, b.Day) })

	var rated []int
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT rating FROM conversations WHERE rating > 0 AND rated_at >= ? AND rated_at < ?`,
		from, to).Scan(&rated).Error; err != nil {
		return classify(op, err)
	}
	for _, r := range rated {
		k.Satisfaction.Conversations.add(r)
		k.Satisfaction.All.add(r)
	}
	return nil
}

// maxUnresolvedRead bounds how many unresolved questions are opened to
// group them.
const maxUnresolvedRead = 5000

func (db *DB) assistantKPIs(ctx context.Context, p KPIPeriod, k *KPIs) error {
	const op = "store.assistantKPIs"
	from, to := p.From.UTC(), p.To.UTC()
	var rows []struct {
		Handoff string
		Outcome string
		N       int
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT handoff, outcome, COUNT(*) AS n FROM kb_answers
	    WHERE created_at >= ? AND created_at < ? GROUP BY handoff, outcome`, from, to).Scan(&rows).Error; err != nil {
		return classify(op, err)
	}
	a := &k.Assistant
	for _, r := range rows {
		a.Turns += r.N
		if r.Handoff == "" {
			a.Answered += r.N
		} else {
			a.HandedOff += r.N
		}
		switch r.Outcome {
		case OutcomeResolved:
			a.Resolved += r.N
		case OutcomeUnresolved:
			a.Unresolved += r.N
		default:
			a.Pending += r.N
		}
	}
	if d := a.Resolved + a.Unresolved; d > 0 {
		a.UnresolvedShare = float64(a.Unresolved) / float64(d)
	}
	a.TopUnresolved = []UnresolvedQuestion{}
	if a.Unresolved == 0 {
		return nil
	}
	s, err := db.sealerFor(op)
	if err != nil {
		return err
	}
	var sealed []struct {
		Conversation string
		Question     []byte
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT conversation, question FROM kb_answers
	    WHERE outcome = 'unresolved' AND created_at >= ? AND created_at < ? ORDER BY id DESC LIMIT ?`, from, to, maxUnresolvedRead).Scan(&sealed).Error; err != nil {
		return classify(op, err)
	}
	questions := make([]string, 0, len(sealed))
	for _, r := range sealed {
		q, err := s.open(r.Question, kbAnswerAD(r.Conversation, "question"))
		if err != nil {
			return rental.Wrap(op, rental.KindInternal, "", err)
		}
		if t := strings.TrimSpace(string(q)); t != "" {
			questions = append(questions, t)
		}
	}
	a.TopUnresolved = GroupQuestions(questions, 10)
	return nil
}

// normalizeQuestion drops what does not change a question's meaning for
// grouping: case, spaces, punctuation, emoji, and the particles customers
// end questions with.
func normalizeQuestion(q string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(q) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	s := b.String()
	for {
		t := s
		for _, suf := range []string{"吗", "呢", "啊", "呀", "吧", "嘛", "哈", "呗", "么", "请问", "老板", "你好", "您好"} {
			s = strings.TrimSuffix(s, suf)
			s = strings.TrimPrefix(s, suf)
		}
		if s == t {
			return s
		}
	}
}

func kpiBigrams(s string) map[string]bool {
	r := []rune(s)
	out := map[string]bool{}
	if len(r) == 1 {
		out[s] = true
	}
	for i := 0; i+1 < len(r); i++ {
		out[string(r[i:i+2])] = true
	}
	return out
}

func kpiJaccard(a, b map[string]bool) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	inter := 0
	for k := range a {
		if b[k] {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

// GroupQuestions groups similar questions and returns the n largest
// groups. Two questions are similar when they are equal once normalized,
// or share at least 60% of their character bigrams (Chinese has no spaces
// to split words on, and bigrams catch "押金怎么退" ≈ "押金怎么退回").
func GroupQuestions(questions []string, n int) []UnresolvedQuestion {
	type group struct {
		grams    map[string]bool
		wordings map[string]int
		order    []string
		count    int
		first    int
	}
	var groups []*group
	for i, q := range questions {
		norm := normalizeQuestion(q)
		if norm == "" {
			continue
		}
		g := kpiBigrams(norm)
		var best *group
		bestScore := 0.0
		for _, gr := range groups {
			if sc := kpiJaccard(g, gr.grams); sc >= 0.6 && sc > bestScore {
				best, bestScore = gr, sc
			}
		}
		if best == nil {
			best = &group{grams: g, wordings: map[string]int{}, first: i}
			groups = append(groups, best)
		}
		if best.wordings[q] == 0 {
			best.order = append(best.order, q)
		}
		best.wordings[q]++
		best.count++
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return b.count - a.count })
	out := []UnresolvedQuestion{}
	for _, g := range groups[:min(n, len(groups))] {
		words := slices.Clone(g.order)
		slices.SortStableFunc(words, func(a, b string) int {
			if d := g.wordings[b] - g.wordings[a]; d != 0 {
				return d
			}
			return len(a) - len(b) // the plainest wording of a tie
		})
		u := UnresolvedQuestion{Question: words[0], Count: g.count}
		if len(words) > 1 {
			u.Variants = words[1:min(len(words), 4)]
		}
		out = append(out, u)
	}
	return out
}

func (db *DB) rentalKPIs(ctx context.Context, p KPIPeriod, k *KPIs) error {
	const op = "store.rentalKPIs"
	from, to := p.From.UTC(), p.To.UTC()
	var orders []struct {
		ID            int64
		OrderNo       string
		MemberID      int64
		State         string
		Rent          int64
		Deposit       int64
		DepositWaived bool
		LateFee       int64
		DamageFee     int64
		CreatedAt     time.Time
		ClosedAt      *time.Time
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT id, order_no, member_id, state, rent, deposit, deposit_waived, late_fee, damage_fee, created_at, closed_at
	    FROM orders WHERE paid_at IS NOT NULL AND paid_at >= ? AND paid_at < ?`, from, to).Scan(&orders).Error; err != nil {
		return classify(op, err)
	}
	if len(orders) == 0 {
		return nil
	}
	// A recorded video inspection: a recorded call naming the order (by
	// number or id), or a recording in the order's evidence.
	video := map[int64]bool{}
	// Calls name the order by number or by id: read the recorded calls'
	// order references once and match them here, rather than joining on an
	// OR of two forms that no index serves.
	var refs []string
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT DISTINCT order_id FROM calls WHERE recorded AND order_id <> ''`).Scan(&refs).Error; err != nil {
		return classify(op, err)
	}
	recorded := make(map[string]bool, len(refs))
	for _, r := range refs {
		recorded[r] = true
	}
	var withCall []int64
	for _, o := range orders {
		if recorded[o.OrderNo] || recorded[strconv.FormatInt(o.ID, 10)] {
			withCall = append(withCall, o.ID)
		}
	}
	var withRec []int64
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT DISTINCT o.id FROM orders o JOIN evidence e ON e.order_id = o.id AND e.kind = 'recording'
	    WHERE o.paid_at >= ? AND o.paid_at < ?`, from, to).Scan(&withRec).Error; err != nil {
		return classify(op, err)
	}
	for _, id := range append(withCall, withRec...) {
		video[id] = true
	}
	k.Calls.RecordedForOrds = len(video)
	refunded := map[int64]int64{}
	var refunds []struct {
		OrderID int64
		Amount  int64
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT r.order_id AS order_id, SUM(r.amount) AS amount FROM refunds r JOIN orders o ON o.id = r.order_id
	    WHERE r.state = 'succeeded' AND o.paid_at >= ? AND o.paid_at < ? GROUP BY r.order_id`, from, to).Scan(&refunds).Error; err != nil {
		return classify(op, err)
	}
	for _, r := range refunds {
		refunded[r.OrderID] = r.Amount
	}
	// Disputes: the assistant handed a customer over for a dispute while
	// an order of theirs ran (from ordering until a week after closing).
	var disputes []struct {
		MemberID  int64
		CreatedAt time.Time
	}
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT v.member_id AS member_id, k.created_at AS created_at FROM kb_answers k
	    JOIN conversations v ON CAST(v.id AS TEXT) = k.conversation
	    WHERE k.handoff = 'dispute' AND k.created_at >= ?`, from).Scan(&disputes).Error; err != nil {
		return classify(op, err)
	}
	byMember := map[int64][]time.Time{}
	for _, d := range disputes {
		byMember[d.MemberID] = append(byMember[d.MemberID], d.CreatedAt)
	}
	for _, o := range orders {
		groups := []*RentalGroup{&k.Rental.All, &k.Rental.WithoutVideo}
		if video[o.ID] {
			groups[1] = &k.Rental.WithVideo
		}
		deposit := o.Deposit
		if o.DepositWaived {
			deposit = 0
		}
		end := time.Now().UTC()
		if o.ClosedAt != nil {
			end = o.ClosedAt.Add(7 * 24 * time.Hour)
		}
		disputed := false
		for _, at := range byMember[o.MemberID] {
			if !at.Before(o.CreatedAt) && at.Before(end) {
				disputed = true
			}
		}
		for _, g := range groups {
			g.Orders++
			if o.State != string(rental.StateCancelled) {
				g.Revenue += o.Rent + o.LateFee + o.DamageFee
			}
			g.Deposits += deposit
			g.DepositsRefunded += min(refunded[o.ID], deposit)
			if o.DamageFee > 0 {
				g.Damaged++
				g.DamageFees += o.DamageFee
			}
			if disputed {
				g.Disputed++
			}
		}
	}
	return nil
}

// ParseKPIDay reads "2026-11-25" as that Shanghai midnight.
func ParseKPIDay(s string) (time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", s, rental.Shanghai())
	if err != nil {
		return time.Time{}, rental.Errorf("store.ParseKPIDay", rental.KindInvalid, "日期格式应为 2026-11-25 (date must look like 2026-11-25): %q", s)
	}
	return d, nil
}
