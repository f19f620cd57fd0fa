package store_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
)

// kpiSeed writes a small, known history; the figures the test expects are
// worked out by hand in the comments.
type kpiSeed struct {
	t  *testing.T
	db *store.DB
}

func (s kpiSeed) exec(q string, args ...any) {
	s.t.Helper()
	if err := s.db.Gorm.Exec(q, args...).Error; err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
}

func (s kpiSeed) lastID(table string) int64 {
	s.t.Helper()
	var id int64
	if err := s.db.Gorm.Raw("SELECT MAX(id) FROM " + table).Scan(&id).Error; err != nil {
		s.t.Fatal(err)
	}
	return id
}

func kpiUTC(day, hm string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", day+" "+hm)
	if err != nil {
		panic(err)
	}
	return t
}

func (s kpiSeed) call(room string, member int64, started time.Time, state string, answerAfter, duration time.Duration, rating int, orderID string, recorded bool) {
	s.t.Helper()
	var ans, end any
	if answerAfter > 0 {
		a := started.Add(answerAfter)
		ans, end = a, a.Add(duration)
	}
	s.exec(`INSERT INTO calls (room_id, kind, source, member_id, state, started_at, answered_at, ended_at, rating, order_id, recorded, purpose)
	    VALUES (?, 'video', 'quick_help', ?, ?, ?, ?, ?, ?, ?, ?, 'inspection_pickup')`, room, member, state, started, ans, end, rating, orderID, recorded)
}

func (s kpiSeed) conversation(member int64, state string, opened time.Time, rating int, ratedAt any) int64 {
	s.t.Helper()
	s.exec(`INSERT INTO conversations (member_id, openid, state, opened_at, rating, rated_at, last_link, created_at, updated_at)
	    VALUES (?, 'o', ?, ?, ?, ?, '', ?, ?)`, member, state, opened, rating, ratedAt, opened, opened)
	return s.lastID("conversations")
}

func (s kpiSeed) message(conv int64, seq int, dir, author string, at time.Time) {
	s.t.Helper()
	s.exec(`INSERT INTO chat_messages (conversation_id, seq, direction, kind, author, created_at, content_hash, prev_link, link)
	    VALUES (?, ?, ?, 'text', ?, ?, 'h', 'p', ?)`, conv, seq, dir, author, at, fmt.Sprintf("l%d-%d", conv, seq))
}

func (s kpiSeed) order(no string, member int64, state string, rent, deposit, lateFee, damage int64, paid any, closed any) int64 {
	s.t.Helper()
	created := kpiUTC("2026-11-19", "20:00:00")
	if p, ok := paid.(time.Time); ok {
		created = p.Add(-time.Hour)
	}
	s.exec(`INSERT INTO orders (order_no, member_id, tier, state, period_from, period_to, deposit_waived, cleaning_buffer_seconds, late_fee_per_day,
	        grace_period_seconds, rent, deposit, total, late_fee, damage_fee, created_at, expires_at, updated_at, paid_at, closed_at)
	    VALUES (?, ?, 'guest', ?, '2026-11-20', '2026-11-21', FALSE, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		no, member, state, rent, deposit, rent+deposit, lateFee, damage, created, created.Add(15*time.Minute), created, paid, closed)
	return s.lastID("orders")
}

func (s kpiSeed) refund(order int64, no string, amount int64, state string) {
	s.t.Helper()
	at := kpiUTC("2026-11-21", "08:00:00")
	s.exec(`INSERT INTO payments (order_id, attempt, out_trade_no, amount, state, created_at, updated_at) VALUES (?, ?, ?, ?, 'succeeded', ?, ?)`,
		order, 100+len(no), "P"+no, 99999, at, at)
	s.exec(`INSERT INTO refunds (order_id, attempt, out_refund_no, out_trade_no, payment_amount, amount, state, created_at, updated_at)
	    VALUES (?, ?, ?, ?, 99999, ?, ?, ?, ?)`, order, len(no), "R"+no, "P"+no, amount, state, at, at)
}

func TestKPIs(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			s := kpiSeed{t, db}
			m1 := seedFlagMember(t, db, "K1", "gold")
			m2 := seedFlagMember(t, db, "K2", "guest")
			// The period: Shanghai days 11-20 and 11-21 = [11-19 16:00Z, 11-21 16:00Z).
			from, _ := store.ParseKPIDay("2026-11-20")
			to, _ := store.ParseKPIDay("2026-11-22")

			o1 := s.order("TG1", m1, "settled", 5000, 20000, 0, 3000, kpiUTC("2026-11-20", "01:00:00"), kpiUTC("2026-11-21", "01:00:00"))
			o2 := s.order("TG2", m2, "settled", 3000, 10000, 1000, 0, kpiUTC("2026-11-21", "05:00:00"), nil)
			o3 := s.order("TG3", m1, "cancelled", 2000, 5000, 0, 0, kpiUTC("2026-11-21", "02:00:00"), kpiUTC("2026-11-21", "03:00:00"))
			s.order("TG4", m2, "awaiting_payment", 1000, 1000, 0, 0, nil, nil)                     // never paid
			s.order("TG5", m2, "settled", 1000, 1000, 0, 0, kpiUTC("2026-11-18", "01:00:00"), nil) // paid before
			s.refund(o1, "1", 17000, "succeeded")                                                  // deposit 20000 − damage 3000
			s.refund(o2, "2", 9000, "succeeded")                                                   // 10000 − late fee 1000
			s.refund(o2, "22", 9000, "failed")                                                     // a failed attempt counts nothing
			s.refund(o3, "3", 7000, "succeeded")                                                   // cancelled: rent and deposit back

			// Calls: 5 started in the period, 3 answered (60, 120, 300 s), 2
			// missed at 20:xx Shanghai, 1 still ringing.
			s.call("c1", m1, kpiUTC("2026-11-20", "01:00:00"), "ended", 10*time.Second, 120*time.Second, 5, "TG1", true)
			s.call("c2", m2, kpiUTC("2026-11-20", "02:00:00"), "ended", 5*time.Second, 300*time.Second, 3, "", false)
			s.call("c3", m2, kpiUTC("2026-11-20", "12:30:00"), "missed", 0, 0, 0, "", false)
			s.call("c4", m1, kpiUTC("2026-11-21", "12:10:00"), "declined", 0, 0, 0, "", false)
			s.call("c5", m1, kpiUTC("2026-11-21", "03:00:00"), "ringing", 0, 0, 0, "", false)
			s.call("c7", m2, kpiUTC("2026-11-21", "00:00:00"), "ended", 3*time.Second, 60*time.Second, 0, "", false)
			s.call("c6", m2, kpiUTC("2026-11-19", "15:00:00"), "missed", 0, 0, 0, "", false)                                          // 23:00 on the 19th: outside
			s.call("c8", m1, kpiUTC("2026-11-19", "10:00:00"), "ended", time.Second, time.Second, 0, strconv.FormatInt(o3, 10), true) // outside, but inspects o3

			// Conversations: 3 opened in the period; first responses 120 s and 600 s.
			v1 := s.conversation(m1, "resolved", kpiUTC("2026-11-20", "00:00:00"), 4, kpiUTC("2026-11-20", "03:00:00"))
			v2 := s.conversation(m2, "assigned", kpiUTC("2026-11-21", "06:00:00"), 0, nil)
			v3 := s.conversation(m1, "open", kpiUTC("2026-11-21", "10:00:00"), 0, nil)
			s.conversation(m2, "resolved", kpiUTC("2026-11-18", "06:00:00"), 1, kpiUTC("2026-11-18", "07:00:00")) // outside
			s.message(v1, 1, "in", "customer:1", kpiUTC("2026-11-20", "00:00:00"))
			s.message(v1, 2, "out", "assistant", kpiUTC("2026-11-20", "00:00:05"))
			s.message(v1, 3, "out", "staff:laowang", kpiUTC("2026-11-20", "00:02:00"))
			s.message(v1, 4, "in", "customer:1", kpiUTC("2026-11-20", "00:03:00"))
			s.message(v2, 1, "in", "customer:2", kpiUTC("2026-11-21", "06:00:00"))
			s.message(v2, 2, "out", "system", kpiUTC("2026-11-21", "06:00:01"))
			s.message(v2, 3, "out", "staff:xiaoli", kpiUTC("2026-11-21", "06:10:00"))
			s.message(v3, 1, "in", "customer:1", kpiUTC("2026-11-21", "10:00:00"))
			s.message(v1, 5, "in", "customer:1", kpiUTC("2026-11-20", "16:30:00")) // 00:30 on the 21st in Shanghai
			s.message(v1, 6, "in", "customer:1", kpiUTC("2026-11-21", "15:59:59")) // 23:59:59 on the 21st
			s.message(v1, 7, "in", "customer:1", kpiUTC("2026-11-21", "16:00:00")) // midnight: the 22nd, outside
			s.message(v1, 8, "in", "customer:1", kpiUTC("2026-11-19", "15:59:59")) // 23:59:59 on the 19th, outside

			// The assistant: 6 turns, 2 handoffs; 1 resolved, 4 unresolved.
			rec := func(conv int64, q, handoff, outcome string, at time.Time) {
				t.Helper()
				r := &store.AnswerRecord{Conversation: strconv.FormatInt(conv, 10), Question: q, Kind: "kb", Handoff: handoff, Outcome: outcome, CreatedAt: at}
				if err := db.AddAnswerRecord(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			rec(v1, "押金怎么退", "", "unresolved", kpiUTC("2026-11-20", "00:00:05"))
			rec(v2, "押金怎么退呢？", "low_confidence", "unresolved", kpiUTC("2026-11-21", "06:00:01"))
			rec(v3, "押金 怎么退回", "", "unresolved", kpiUTC("2026-11-21", "10:00:01"))
			rec(v1, "几点开门", "", "resolved", kpiUTC("2026-11-20", "00:04:00"))
			rec(v2, "鱼竿断了不是我弄的", "dispute", "unresolved", kpiUTC("2026-11-21", "07:00:00")) // during o2
			rec(v3, "有没有鲫鱼竿", "", "pending", kpiUTC("2026-11-21", "10:05:00"))

			qh, _ := db.QuickHelpEntries(ctx, false)
			for _, at := range []time.Time{kpiUTC("2026-11-20", "02:00:00"), kpiUTC("2026-11-21", "02:00:00"), kpiUTC("2026-11-22", "02:00:00")} {
				if err := db.UseQuickHelp(ctx, qh[0].ID, m1, at); err != nil {
					t.Fatal(err)
				}
			}

			k, err := db.KPIs(ctx, store.KPIPeriod{From: from, To: to})
			if err != nil {
				t.Fatal(err)
			}
			c := k.Calls
			var wantHours [24]int
			wantHours[20] = 2
			if c.Started != 6 || c.Answered != 3 || c.Missed != 2 || c.ConnectRate != 0.5 || c.AvgDurationSec != 160 || c.P90DurationSec != 300 || c.MissedByHour != wantHours {
				t.Errorf("calls %+v", c)
			}
			sat := k.Satisfaction
			if sat.Conversations.Count != 1 || sat.Conversations.Average != 4 || sat.Calls.Count != 2 || sat.Calls.Average != 4 ||
				sat.All.Distribution != [5]int{0, 0, 1, 1, 1} || sat.All.Average != 4 {
				t.Errorf("satisfaction %+v", sat)
			}
			ch := k.Chat
			if ch.Opened != 3 || ch.Responded != 2 || ch.AvgFirstResponse != 360 || ch.P50FirstResponse != 120 || ch.P90FirstResponse != 600 ||
				ch.ByState["open"] != 1 || ch.ByState["assigned"] != 1 || ch.ByState["resolved"] != 1 || ch.Messages != 10 {
				t.Errorf("conversations %+v", ch)
			}
			wantDays := []store.DayCount{{Day: "2026-11-20", Customer: 2, Staff: 1, Assistant: 1, Total: 4}, {Day: "2026-11-21", Customer: 4, Staff: 1, System: 1, Total: 6}}
			if fmt.Sprint(ch.MessagesPerDay) != fmt.Sprint(wantDays) {
				t.Errorf("messages per day %+v, want %+v", ch.MessagesPerDay, wantDays)
			}
			a := k.Assistant
			if a.Turns != 6 || a.Answered != 4 || a.HandedOff != 2 || a.Resolved != 1 || a.Unresolved != 4 || a.Pending != 1 || a.UnresolvedShare != 0.8 {
				t.Errorf("assistant %+v", a)
			}
			if len(a.TopUnresolved) != 2 || a.TopUnresolved[0].Question != "押金怎么退" || a.TopUnresolved[0].Count != 3 ||
				len(a.TopUnresolved[0].Variants) != 2 || a.TopUnresolved[1].Count != 1 {
				t.Errorf("top unresolved %+v", a.TopUnresolved)
			}
			r := k.Rental
			wantVideo := store.RentalGroup{Orders: 2, Revenue: 8000, Deposits: 25000, DepositsRefunded: 22000, Damaged: 1, DamageFees: 3000}
			wantPlain := store.RentalGroup{Orders: 1, Revenue: 4000, Deposits: 10000, DepositsRefunded: 9000, Disputed: 1}
			wantAll := store.RentalGroup{Orders: 3, Revenue: 12000, Deposits: 35000, DepositsRefunded: 31000, Damaged: 1, DamageFees: 3000, Disputed: 1}
			if r.WithVideo != wantVideo || r.WithoutVideo != wantPlain || r.All != wantAll || c.RecordedForOrds != 2 {
				t.Errorf("rental %+v (recorded %d)", r, c.RecordedForOrds)
			}
			if len(k.QuickHelp) != 3 || k.QuickHelp[0].Uses != 2 || k.QuickHelp[0].Total != 3 {
				t.Errorf("quick help %+v", k.QuickHelp)
			}
		})
	}
}

func TestGroupQuestions(t *testing.T) {
	got := store.GroupQuestions([]string{"押金怎么退", "押金怎么退呢？", "老板，押金怎么退回", "几点开门", "几点开门啊", "鲫鱼用什么饵", "  ", "?"}, 2)
	if len(got) != 2 || got[0].Count != 3 || got[0].Question != "押金怎么退" || got[1].Count != 2 || got[1].Question != "几点开门" {
		t.Errorf("groups %+v", got)
	}
}

// FuzzGroupQuestions: customers' words are outside input. Grouping never
// panics, loses or invents a question, and names each group by one of its
// wordings.
func FuzzGroupQuestions(f *testing.F) {
	f.Add("押金怎么退", "押金怎么退呢？", "几点开门")
	f.Add("", "？？？", "👍")
	f.Add("老板吗呢", "\xff\xfe", "a")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		in := []string{a, b, c}
		got := store.GroupQuestions(in, 10)
		total := 0
		for _, g := range got {
			total += g.Count
			found := false
			for _, q := range in {
				found = found || q == g.Question
			}
			if !found || g.Count < 1 {
				t.Fatalf("group %+v not from %q", g, in)
			}
		}
		if total > len(in) {
			t.Fatalf("%d questions grouped from %d", total, len(in))
		}
	})
}

// BenchmarkKPIs computes a month's KPIs for a busy shop on SQLite: 6 000
// calls, 1 500 conversations with 15 000 messages, 3 000 paid orders and
// 1 500 assistant turns (half of them unresolved, opened and grouped).
func BenchmarkKPIs(b *testing.B) {
	ctx := context.Background()
	db := migratedTB(b, storetest.Target{Name: "sqlite"})
	t0 := kpiUTC("2026-11-01", "00:00:00")
	err := db.Gorm.Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		for i := 0; i < 300; i++ {
			if err := tx.Exec(`INSERT INTO members (name, tier, joined_at, created_at, updated_at) VALUES ('m', 'gold', ?, ?, ?)`, now, now, now).Error; err != nil {
				return err
			}
		}
		for i := 0; i < 6000; i++ {
			at := t0.Add(time.Duration(i) * 7 * time.Minute)
			var ans, end any
			state := "missed"
			if i%4 != 0 {
				ans, end, state = at.Add(9*time.Second), at.Add(time.Duration(60+i%300)*time.Second), "ended"
			}
			if err := tx.Exec(`INSERT INTO calls (room_id, kind, source, member_id, state, started_at, answered_at, ended_at, rating, order_id, recorded) VALUES (?, 'video', 'quick_help', ?, ?, ?, ?, ?, ?, ?, ?)`,
				fmt.Sprintf("r%d", i), 1+i%300, state, at, ans, end, i%6, fmt.Sprintf("B%d", i%3000), i%5 == 0).Error; err != nil {
				return err
			}
		}
		for i := 0; i < 1500; i++ {
			at := t0.Add(time.Duration(i) * 28 * time.Minute)
			if err := tx.Exec(`INSERT INTO conversations (member_id, openid, state, opened_at, rating, rated_at, last_link, created_at, updated_at) VALUES (?, 'o', 'resolved', ?, ?, ?, '', ?, ?)`,
				1+i%300, at, i%6, at.Add(time.Hour), at, at).Error; err != nil {
				return err
			}
			for j := 0; j < 10; j++ {
				dir, author := "in", "customer:1"
				if j%2 == 1 {
					dir, author = "out", "staff:laowang"
				}
				if err := tx.Exec(`INSERT INTO chat_messages (conversation_id, seq, direction, kind, author, created_at, content_hash, prev_link, link) VALUES (?, ?, ?, 'text', ?, ?, 'h', 'p', ?)`,
					i+1, j+1, dir, author, at.Add(time.Duration(j)*time.Minute), fmt.Sprintf("l%d-%d", i, j)).Error; err != nil {
					return err
				}
			}
		}
		for i := 0; i < 3000; i++ {
			at := t0.Add(time.Duration(i) * 14 * time.Minute)
			if err := tx.Exec(`INSERT INTO orders (order_no, member_id, tier, state, period_from, period_to, deposit_waived, cleaning_buffer_seconds, late_fee_per_day,
			    grace_period_seconds, rent, deposit, total, late_fee, damage_fee, created_at, expires_at, updated_at, paid_at)
			    VALUES (?, ?, 'gold', 'settled', '2026-11-20', '2026-11-21', FALSE, 0, 0, 0, 3000, 10000, 13000, 0, ?, ?, ?, ?, ?)`,
				fmt.Sprintf("B%d", i), 1+i%300, (i%10)*100, at, at, at, at).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	questions := []string{"押金怎么退", "押金怎么退呢", "几点开门", "能不能便宜点", "鱼竿断了怎么办", "可以送货吗"}
	for i := 0; i < 1500; i++ {
		outcome := "resolved"
		if i%2 == 0 {
			outcome = "unresolved"
		}
		r := &store.AnswerRecord{Conversation: strconv.Itoa(1 + i), Question: questions[i%len(questions)], Kind: "kb", Outcome: outcome, CreatedAt: t0.Add(time.Duration(i) * 28 * time.Minute)}
		if err := db.AddAnswerRecord(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	from, _ := store.ParseKPIDay("2026-11-01")
	to, _ := store.ParseKPIDay("2026-12-01")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k, err := db.KPIs(ctx, store.KPIPeriod{From: from, To: to})
		if err != nil || k.Calls.Started == 0 || k.Chat.Messages == 0 || k.Rental.All.Orders == 0 {
			b.Fatalf("%v %+v", err, k.Calls)
		}
	}
}
