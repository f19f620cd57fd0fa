package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

func TestKnowledgeBase(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			v0, err := db.KBVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e := store.KBEntry{Slug: "deposit-refund", Title: "押金怎么退", Questions: []string{"押金什么时候退", "押金退到哪里"},
				Answer: "归还验收后原路退回。", Tags: []string{"押金", "退款"}, Enabled: true}
			if err := db.CreateKBEntry(ctx, &e); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateKBEntry(ctx, &store.KBEntry{Slug: "deposit-refund", Title: "x", Answer: "y"}); rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("duplicate slug: %v", err)
			}
			got, err := db.KBEntry(ctx, "deposit-refund")
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != "qa" || !reflect.DeepEqual(got.Questions, e.Questions) || !reflect.DeepEqual(got.Tags, e.Tags) || !got.Enabled || got.CreatedAt.IsZero() {
				t.Fatalf("read back %+v", got)
			}
			v1, _ := db.KBVersion(ctx)
			if v1 == v0 {
				t.Error("version unchanged by a create")
			}
			got.Answer, got.Enabled = "验收后原路退回微信。", false
			if err := db.UpdateKBEntry(ctx, &got); err != nil {
				t.Fatal(err)
			}
			if again, _ := db.KBEntry(ctx, "deposit-refund"); again.Answer != got.Answer || again.Enabled {
				t.Fatalf("after update %+v", again)
			}
			v2, _ := db.KBVersion(ctx)
			if v2 == v1 {
				t.Error("version unchanged by an update")
			}
			if err := db.UpdateKBEntry(ctx, &store.KBEntry{Slug: "nope", Title: "t", Answer: "a"}); rental.ErrorKind(err) != rental.KindNotFound {
				t.Fatalf("update unknown: %v", err)
			}

			// Import: create, update, leave alone; twice is a no-op.
			file := []store.KBEntry{
				{Slug: "deposit-refund", Title: "押金怎么退", Answer: "验收后原路退回微信。", Tags: []string{"押金"}, Enabled: true},
				{Slug: "hours", Title: "营业时间", Answer: "{营业时间}", Enabled: true},
				{Slug: "cancel", Kind: "article", Title: "取消订单", Questions: []string{"怎么取消"}, Answer: "取货前可取消。", Enabled: true},
			}
			rep, err := db.ImportKB(ctx, file, false)
			if err != nil {
				t.Fatal(err)
			}
			if rep != (store.KBImportReport{Created: 2, Updated: 1}) {
				t.Fatalf("first import: %+v", rep)
			}
			v3, _ := db.KBVersion(ctx)
			if rep, _ := db.ImportKB(ctx, file, false); rep != (store.KBImportReport{Unchanged: 3}) {
				t.Fatalf("second import: %+v", rep)
			}
			if v, _ := db.KBVersion(ctx); v != v3 {
				t.Error("version changed by an import that changed nothing")
			}
			// Paging by slug.
			page1, err := db.KBEntries(ctx, store.KBFilter{Limit: 2})
			if err != nil || len(page1) != 2 || page1[0].Slug != "cancel" || page1[1].Slug != "deposit-refund" {
				t.Fatalf("page 1: %+v, %v", page1, err)
			}
			page2, _ := db.KBEntries(ctx, store.KBFilter{After: page1[1].Slug, Limit: 2})
			if len(page2) != 1 || page2[0].Slug != "hours" || page2[0].Kind != "qa" || page2[0].Questions == nil {
				t.Fatalf("page 2: %+v", page2)
			}
			// Replace drops what the file lacks; delete removes one.
			rep, err = db.ImportKB(ctx, file[:1], true)
			if err != nil || rep != (store.KBImportReport{Unchanged: 1, Deleted: 2}) {
				t.Fatalf("replace import: %+v, %v", rep, err)
			}
			v4, _ := db.KBVersion(ctx)
			if err := db.DeleteKBEntry(ctx, "deposit-refund"); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteKBEntry(ctx, "deposit-refund"); rental.ErrorKind(err) != rental.KindNotFound {
				t.Fatalf("delete twice: %v", err)
			}
			all, err := db.AllKBEntries(ctx)
			if err != nil || len(all) != 0 {
				t.Fatalf("all after delete: %+v, %v", all, err)
			}
			if v, _ := db.KBVersion(ctx); v == v4 {
				t.Error("version unchanged by a delete")
			}
		})
	}
}

func TestAnswerRecords(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			start := time.Now().Add(-time.Minute)
			answered := store.AnswerRecord{Conversation: "12", Question: "押金咋退", Answer: "验收后原路退回。", Kind: "kb",
				Sources: []string{"deposit-refund", "deposit-refund-time"}, Confidence: 0.91}
			if err := db.AddAnswerRecord(ctx, &answered); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			handed := store.AnswerRecord{Conversation: "12", Question: "我要投诉", Kind: "none", Handoff: "dispute",
				Outcome: store.OutcomeUnresolved, OutcomeBy: "handoff", DecidedAt: &now}
			if err := db.AddAnswerRecord(ctx, &handed); err != nil {
				t.Fatal(err)
			}
			other := store.AnswerRecord{Conversation: "13", Question: "几点开门", Answer: "每天 06:00–20:00", Kind: "kb"}
			if err := db.AddAnswerRecord(ctx, &other); err != nil {
				t.Fatal(err)
			}
			if answered.ID == 0 || handed.ID <= answered.ID {
				t.Fatalf("ids %d %d", answered.ID, handed.ID)
			}
			// First signal wins.
			if err := db.SetAnswerOutcome(ctx, answered.ID, store.OutcomeResolved, "customer", time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.SetAnswerOutcome(ctx, answered.ID, store.OutcomeUnresolved, "person", time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.SetAnswerOutcome(ctx, answered.ID, "maybe", "x", time.Now()); rental.ErrorKind(err) != rental.KindInvalid {
				t.Fatalf("bad outcome: %v", err)
			}
			recs, err := db.AnswerRecords(ctx, store.AnswerFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 || recs[0].ID != other.ID {
				t.Fatalf("records newest first: %+v", recs)
			}
			r := recs[2]
			if r.Question != "押金咋退" || r.Answer != "验收后原路退回。" || r.Outcome != store.OutcomeResolved || r.OutcomeBy != "customer" ||
				r.DecidedAt == nil || !reflect.DeepEqual(r.Sources, answered.Sources) || r.Confidence != 0.91 {
				t.Fatalf("record read back %+v", r)
			}
			if h, _ := db.AnswerRecords(ctx, store.AnswerFilter{Handoff: true}); len(h) != 1 || h[0].Handoff != "dispute" || h[0].Answer != "" {
				t.Fatalf("handoffs: %+v", h)
			}
			if p, _ := db.AnswerRecords(ctx, store.AnswerFilter{Before: other.ID, Limit: 1}); len(p) != 1 || p[0].ID != handed.ID {
				t.Fatalf("paging: %+v", p)
			}
			// The customer's words are not stored in the clear.
			var raw []byte
			if err := db.SQL.QueryRowContext(ctx, "SELECT question FROM kb_answers WHERE id = $1", answered.ID).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if string(raw) == "押金咋退" || len(raw) < 20 {
				t.Fatalf("question stored in the clear: %q", raw)
			}
			st, err := db.AnswerStats(ctx, start)
			if err != nil {
				t.Fatal(err)
			}
			want := store.AnswerStats{Total: 3, Answered: 2, HandedOff: 1, Resolved: 1, Unresolved: 1, Pending: 1, ByHandoff: map[string]int{"dispute": 1}}
			if !reflect.DeepEqual(st, want) {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
			if st, _ := db.AnswerStats(ctx, time.Now().Add(time.Hour)); st.Total != 0 {
				t.Fatalf("stats in the future: %+v", st)
			}
		})
	}
}
