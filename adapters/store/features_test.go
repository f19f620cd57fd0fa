package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// seedFlagMember inserts a member directly and returns its id.
func seedFlagMember(t *testing.T, db *store.DB, no, tier string) int64 {
	t.Helper()
	now := time.Now().UTC()
	var memberNo any
	if no != "" {
		memberNo = no
	}
	if err := db.Gorm.Exec(`INSERT INTO members (member_no, name, tier, joined_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		memberNo, "会员"+no, tier, now, now, now).Error; err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.Gorm.Raw(`SELECT MAX(id) FROM members`).Scan(&id).Error; err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFeatureFlagsStore(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			defaults := []store.FeatureFlag{{Key: "video_help", Enabled: true, Percent: 100, KPI: store.KPICallConnect, MinSample: 30, Threshold: 0.15, Window: 72 * time.Hour}}
			if err := db.EnsureFeatureFlags(ctx, defaults); err != nil {
				t.Fatal(err)
			}
			_, _, err := db.UpdateFeatureFlag(ctx, "video_help", store.FeatureChange{Actor: "owner:owner", Action: "update"}, func(f *store.FeatureFlag) error {
				f.Percent = 10
				f.Tiers = []string{"gold"}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// A second Ensure leaves the owner's settings alone.
			if err := db.EnsureFeatureFlags(ctx, defaults); err != nil {
				t.Fatal(err)
			}
			flags, err := db.FeatureFlags(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(flags) != 1 || flags[0].Percent != 10 || flags[0].Version != 2 || flags[0].Window != 72*time.Hour ||
				len(flags[0].Tiers) != 1 || flags[0].UpdatedBy != "owner:owner" {
				t.Fatalf("flags after update: %+v", flags)
			}

			// Lists resolve member numbers, member ids and staff.
			gold := seedFlagMember(t, db, "VIP001", "gold")
			guest := seedFlagMember(t, db, "", "guest")
			if err := db.Gorm.Exec(`INSERT INTO staff (wecom_userid, name, created_at, updated_at) VALUES ('laowang', '老王', ?, ?)`, time.Now().UTC(), time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
			list, err := db.ResolveFeatureList(ctx, []string{"VIP001", fmt.Sprint(guest), "staff:xiaoli", "laowang", " VIP001 "})
			if err != nil {
				t.Fatal(err)
			}
			want := []store.FeatureListEntry{{Entry: "VIP001", MemberID: gold}, {Entry: fmt.Sprint(guest), MemberID: guest},
				{Entry: "staff:xiaoli", Staff: "xiaoli"}, {Entry: "laowang", Staff: "laowang"}}
			if fmt.Sprint(list) != fmt.Sprint(want) {
				t.Fatalf("resolved %+v, want %+v", list, want)
			}
			if _, err := db.ResolveFeatureList(ctx, []string{"nobody-here"}); rental.ErrorKind(err) != rental.KindInvalid {
				t.Fatalf("unknown entry: %v", err)
			}

			// A stale version is a conflict and changes nothing.
			_, _, err = db.UpdateFeatureFlag(ctx, "video_help", store.FeatureChange{Actor: "owner:owner", Action: "update", Version: 1}, func(f *store.FeatureFlag) error {
				f.Percent = 50
				return nil
			})
			if rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("stale version: %v", err)
			}
			if _, _, err := db.UpdateFeatureFlag(ctx, "nope", store.FeatureChange{Actor: "x", Action: "update"}, func(*store.FeatureFlag) error { return nil }); rental.ErrorKind(err) != rental.KindNotFound {
				t.Fatalf("unknown flag: %v", err)
			}
			// A pause with figures and a notice enqueued with it.
			now := time.Now().UTC()
			_, after, err := db.UpdateFeatureFlag(ctx, "video_help", store.FeatureChange{Actor: "guard", Action: "pause", Reason: "worse",
				Figures: map[string]int{"cohort_total": 40}, Notify: &store.OutboxMessage{Kind: "owner.notice", Key: "owner.notice:k1", Payload: []byte(`{}`)}},
				func(f *store.FeatureFlag) error { f.PausedAt, f.PausedReason = &now, "worse"; return nil })
			if err != nil || !after.Paused() || after.Version != 3 {
				t.Fatalf("pause: %+v %v", after, err)
			}
			var queued int
			db.Gorm.Raw(`SELECT COUNT(*) FROM outbox WHERE kind = 'owner.notice'`).Scan(&queued)
			if queued != 1 {
				t.Errorf("owner notice rows: %d", queued)
			}

			audit, err := db.FeatureAudit(ctx, "video_help", 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(audit) != 2 || audit[0].Action != "pause" || audit[0].Actor != "guard" || audit[1].Action != "update" {
				t.Fatalf("audit %+v", audit)
			}
			var b, a store.FeatureFlag
			json.Unmarshal(audit[1].Before, &b) //nolint:errcheck // checked by the comparison
			json.Unmarshal(audit[1].After, &a)  //nolint:errcheck
			if b.Percent != 100 || a.Percent != 10 || string(audit[0].Figures) != `{"cohort_total":40}` {
				t.Errorf("audit before/after: %d → %d, figures %s", b.Percent, a.Percent, audit[0].Figures)
			}
			// Paging.
			page, _ := db.FeatureAudit(ctx, "", audit[0].ID, 10)
			if len(page) != 1 || page[0].ID != audit[1].ID {
				t.Errorf("second page %+v", page)
			}
			// The database refuses to rewrite history.
			if err := db.Gorm.Exec(`UPDATE feature_audit SET actor = 'x'`).Error; err == nil {
				t.Error("feature_audit accepted an UPDATE")
			}
			if err := db.Gorm.Exec(`DELETE FROM feature_audit`).Error; err == nil {
				t.Error("feature_audit accepted a DELETE")
			}
		})
	}
}

func TestFeatureSamples(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			a := seedFlagMember(t, db, "A1", "gold")
			b := seedFlagMember(t, db, "B1", "silver")
			t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
			call := func(room string, member int64, at time.Time, answered bool, rating int) {
				t.Helper()
				var ans any
				state := "missed"
				if answered {
					ans, state = at.Add(10*time.Second), "ended"
				}
				if err := db.Gorm.Exec(`INSERT INTO calls (room_id, kind, source, member_id, state, started_at, answered_at, rating) VALUES (?, 'video', 'quick_help', ?, ?, ?, ?, ?)`,
					room, member, state, at, ans, rating).Error; err != nil {
					t.Fatal(err)
				}
			}
			call("r1", a, t0, true, 5)
			call("r2", a, t0.Add(time.Hour), false, 0)
			call("r3", a, t0.Add(2*time.Hour), false, 0)
			call("r4", b, t0, true, 1)
			call("r5", b, t0.Add(-48*time.Hour), false, 0) // outside the window
			got, err := db.FeatureSamples(ctx, store.KPICallConnect, t0.Add(-time.Hour), t0.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			byMember := map[int64]store.FeatureSample{}
			for _, s := range got {
				byMember[s.MemberID] = s
			}
			if s := byMember[a]; s.Bad != 2 || s.Total != 3 || s.Tier != "gold" {
				t.Errorf("member a: %+v", s)
			}
			if s := byMember[b]; s.Bad != 0 || s.Total != 1 || s.Tier != "silver" {
				t.Errorf("member b: %+v", s)
			}
			low, err := db.FeatureSamples(ctx, store.KPILowRating, t0.Add(-time.Hour), t0.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(low) != 2 {
				t.Fatalf("low rating samples %+v", low)
			}
			for _, s := range low {
				if s.Total != 1 || (s.MemberID == b) != (s.Bad == 1) {
					t.Errorf("low rating %+v", s)
				}
			}
			if _, err := db.FeatureSamples(ctx, store.KPIAssistantUnresolved, t0, t0.Add(time.Hour)); err != nil {
				t.Errorf("assistant samples: %v", err)
			}
			if _, err := db.FeatureSamples(ctx, "nope", t0, t0); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("unknown KPI: %v", err)
			}
		})
	}
}
