package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

const appID = "wx1234567890abcdef"

func importGold(t *testing.T, db *store.DB, no, phone string) {
	t.Helper()
	_, err := db.ImportMembers(context.Background(), []store.MemberImport{{Line: 2, MemberNo: no, Name: "张三", Phone: phone, Tier: "gold", Points: 1200,
		JoinedAt: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestWeChatLoginAndLinking(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			importGold(t, db, "A001", "8613800000001")

			// First login makes a guest; the next one finds it again.
			m1, id1, created, err := db.LoginWeChat(ctx, appID, "o-alice", "")
			if err != nil || !created || m1.Tier != rental.TierGuest {
				t.Fatalf("first login: %+v %v %v", m1, created, err)
			}
			again, id1b, created, err := db.LoginWeChat(ctx, appID, "o-alice", "u-alice")
			if err != nil || created || again.ID != m1.ID || id1b.ID != id1.ID || id1b.UnionID != "u-alice" {
				t.Fatalf("second login: %+v %+v %v %v", again, id1b, created, err)
			}

			// Alice proves the imported member's phone: she lands in that
			// account, with its tier and points; her guest account is merged.
			out, err := db.ProvePhone(ctx, id1.ID, "8613800000001", "sms")
			if err != nil || out.Action != rental.LinkMoveIdentity || out.Member.MemberNo != "A001" || out.Member.Tier != "gold" || out.Member.Points != 1200 {
				t.Fatalf("prove imported phone: %+v %v", out, err)
			}
			m, _, _, _ := db.LoginWeChat(ctx, appID, "o-alice", "")
			if m.MemberNo != "A001" {
				t.Errorf("re-login lands in %+v, want A001", m)
			}
			if merged, _ := db.Member(ctx, m1.ID); merged.MemberNo != "A001" {
				t.Errorf("the old guest id does not resolve to A001: %+v", merged)
			}

			// Bob proves the same phone: never silently relinked — review.
			_, idBob, _, _ := db.LoginWeChat(ctx, appID, "o-bob", "")
			out, err = db.ProvePhone(ctx, idBob.ID, "8613800000001", "phone_button")
			if err != nil || out.Action != rental.LinkReview || out.ReviewID == 0 || out.Member.MemberNo != "" {
				t.Fatalf("conflicting phone: %+v %v", out, err)
			}
			again2, _ := db.ProvePhone(ctx, idBob.ID, "8613800000001", "sms")
			if again2.ReviewID != out.ReviewID {
				t.Errorf("a repeat proof opened a second review: %d vs %d", again2.ReviewID, out.ReviewID)
			}
			pending, err := db.ListLinkReviews(ctx, "pending", 0, 10)
			if err != nil || len(pending) != 1 || pending[0].Holder.MemberNo != "A001" || pending[0].Phone != "86138****0001" {
				t.Fatalf("queue: %+v %v", pending, err)
			}

			// An unknown phone goes to the caller.
			_, idCarol, _, _ := db.LoginWeChat(ctx, appID, "o-carol", "")
			out, err = db.ProvePhone(ctx, idCarol.ID, "8613900000009", "sms")
			if err != nil || out.Action != rental.LinkSetPhone || out.Member.Phone != "8613900000009" {
				t.Fatalf("unknown phone: %+v %v", out, err)
			}

			// The owner decides: a reason is required; then link.
			if _, err := db.DecideLinkReview(ctx, out.ReviewID, store.DecisionLink, "boss", ""); rental.ErrorKind(err) != rental.KindInvalid {
				t.Errorf("no reason: %v", err)
			}
			rv, err := db.DecideLinkReview(ctx, pending[0].ID, store.DecisionLink, "boss", "本人到店核实 (verified in the shop)")
			if err != nil || rv.Status != "linked" || rv.Claimant.MemberNo != "A001" {
				t.Fatalf("decide: %+v %v", rv, err)
			}
			if _, err := db.DecideLinkReview(ctx, pending[0].ID, store.DecisionReject, "boss", "x"); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("deciding twice: %v", err)
			}
			// Unlink puts Bob in a fresh guest account.
			g, err := db.Unlink(ctx, idBob.ID, "boss", "误操作 (mistake)")
			if err != nil || g.Tier != rental.TierGuest {
				t.Fatalf("unlink: %+v %v", g, err)
			}
			if m, _, _, _ := db.LoginWeChat(ctx, appID, "o-bob", ""); m.ID != g.ID {
				t.Errorf("after unlink bob is in %+v", m)
			}

			// Every change is in the audit, in order, with actors and reasons.
			entries, err := db.LinkAudit(ctx, 0, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range entries {
				actions = append(actions, e.Actor+" "+e.Action)
			}
			wantSeq := []string{"customer identity.linked", "customer link.review_requested", "customer phone.set", "owner:boss identity.linked", "owner:boss identity.unlinked"}
			if !containsInOrder(actions, wantSeq) {
				t.Errorf("audit %v lacks %v in order", actions, wantSeq)
			}
		})
	}
}

func containsInOrder(have, want []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestConcurrentFirstLogins(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			db := migrated(t, tg)
			var wg sync.WaitGroup
			ids := make(chan rental.MemberID, 10)
			for i := 0; i < 10; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m, _, _, err := db.LoginWeChat(context.Background(), appID, "o-same", "")
					if err != nil {
						t.Error(err)
						return
					}
					ids <- m.ID
				}()
			}
			wg.Wait()
			close(ids)
			distinct := map[rental.MemberID]bool{}
			for id := range ids {
				distinct[id] = true
			}
			if len(distinct) != 1 {
				t.Errorf("10 concurrent first logins made %d members", len(distinct))
			}
		})
	}
}

func TestImportMembers(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			rows := []store.MemberImport{
				{Line: 2, MemberNo: "A001", Name: "张三", Phone: "8613800000001", Tier: "gold", Points: 10, JoinedAt: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)},
				{Line: 3, MemberNo: "A002", Name: "李四", Tier: "silver", JoinedAt: time.Date(2023, 2, 1, 0, 0, 0, 0, time.UTC)},
			}
			rep, err := db.ImportMembers(ctx, rows, nil)
			if err != nil || rep.Created != 2 {
				t.Fatalf("first: %+v %v", rep, err)
			}
			rep, err = db.ImportMembers(ctx, rows, nil)
			if err != nil || rep.Created != 0 || rep.Updated != 0 || rep.Unchanged != 2 {
				t.Fatalf("re-run is not idempotent: %+v %v", rep, err)
			}
			rows[1].Points = 99
			rep, _ = db.ImportMembers(ctx, rows, nil)
			if rep.Updated != 1 || rep.Unchanged != 1 {
				t.Errorf("one change: %+v", rep)
			}
			// A bad row (phone held by another member) refuses the whole file.
			bad := []store.MemberImport{
				{Line: 2, MemberNo: "A003", Name: "王五", Tier: "gold", JoinedAt: time.Now()},
				{Line: 3, MemberNo: "A004", Name: "赵六", Phone: "8613800000001", Tier: "gold", JoinedAt: time.Now()},
			}
			_, err = db.ImportMembers(ctx, bad, nil)
			var ie *store.ImportErrors
			if !errors.As(err, &ie) || len(ie.Rows) != 1 || ie.Rows[0].Line != 3 {
				t.Fatalf("bad file: %v", err)
			}
			page, _ := db.ListMembers(ctx, "A003", "", 10)
			if len(page.Members) != 0 {
				t.Error("a refused file imported its good rows")
			}
			// Paging and search.
			page, err = db.ListMembers(ctx, "", "", 1)
			if err != nil || len(page.Members) != 1 || page.NextCursor == "" {
				t.Fatalf("page 1: %+v %v", page, err)
			}
			page, _ = db.ListMembers(ctx, "", page.NextCursor, 1)
			if len(page.Members) != 1 || page.Members[0].MemberNo != "A002" || page.NextCursor != "" {
				t.Errorf("page 2: %+v", page)
			}
			if page, _ := db.ListMembers(ctx, "张", "", 10); len(page.Members) != 1 || page.Members[0].Name != "张三" {
				t.Errorf("search: %+v", page)
			}
			if page, _ := db.ListMembers(ctx, "%", "", 10); len(page.Members) != 0 {
				t.Errorf("%% is not escaped: %+v", page)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			s, err := db.CreateSession(ctx, rental.RoleCustomer, "7", "h1", time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if live, _ := db.SessionLive(ctx, s.ID); !live {
				t.Fatal("new session not live")
			}
			s2, err := db.RotateSession(ctx, "h1", "h2", time.Now().Add(time.Hour))
			if err != nil || s2.ID != s.ID || s2.Subject != "7" {
				t.Fatalf("rotate: %+v %v", s2, err)
			}
			if _, err := db.RotateSession(ctx, "h1", "h3", time.Now().Add(time.Hour)); rental.ErrorKind(err) != rental.KindUnauthorized {
				t.Errorf("reusing a rotated refresh token: %v", err)
			}
			if err := db.RevokeSession(ctx, s.ID); err != nil {
				t.Fatal(err)
			}
			if live, _ := db.SessionLive(ctx, s.ID); live {
				t.Error("revoked session still live")
			}
			if _, err := db.RotateSession(ctx, "h2", "h4", time.Now().Add(time.Hour)); rental.ErrorKind(err) != rental.KindUnauthorized {
				t.Errorf("refresh after logout: %v", err)
			}
		})
	}
}

func TestSMSLimitsAndAttempts(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			lim := store.SMSLimits{PhonePerMinute: 1, PhonePerDay: 10, IPPerHour: 3, IPPerDay: 50}
			if err := db.SaveSMSCode(ctx, "8613800000001", "1.1.1.1", "hash-1", 5*time.Minute, lim); err != nil {
				t.Fatal(err)
			}
			if err := db.SaveSMSCode(ctx, "8613800000001", "1.1.1.1", "hash-2", 5*time.Minute, lim); rental.ErrorKind(err) != rental.KindRateLimited {
				t.Errorf("second code within a minute: %v", err)
			}
			for _, p := range []string{"8613800000002", "8613800000003"} {
				if err := db.SaveSMSCode(ctx, p, "1.1.1.1", "h", 5*time.Minute, lim); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.SaveSMSCode(ctx, "8613800000004", "1.1.1.1", "h", 5*time.Minute, lim); rental.ErrorKind(err) != rental.KindRateLimited {
				t.Errorf("4th code from one IP in an hour: %v", err)
			}
			is := func(h string) func(string) bool { return func(got string) bool { return got == h } }
			for i := 0; i < 4; i++ {
				if err := db.CheckSMSCode(ctx, "8613800000001", is("nope"), 5); rental.ErrorKind(err) != rental.KindUnauthorized {
					t.Fatalf("wrong code %d: %v", i, err)
				}
			}
			if err := db.CheckSMSCode(ctx, "8613800000001", is("hash-1"), 5); err != nil {
				t.Fatalf("right code on the 5th try: %v", err)
			}
			if err := db.CheckSMSCode(ctx, "8613800000001", is("hash-1"), 5); rental.ErrorKind(err) != rental.KindUnauthorized {
				t.Errorf("code used twice: %v", err)
			}
			for i := 0; i < 5; i++ {
				db.CheckSMSCode(ctx, "8613800000002", is("nope"), 5) //nolint:errcheck
			}
			if err := db.CheckSMSCode(ctx, "8613800000002", is("h"), 5); err == nil {
				t.Error("the right code after 5 wrong tries was accepted")
			}
		})
	}
}

func TestLinkAuditIsAppendOnly(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			if _, _, _, err := db.LoginWeChat(ctx, appID, "o-audit", ""); err != nil {
				t.Fatal(err)
			}
			if err := db.Gorm.Exec("UPDATE link_audit SET reason = 'rewritten'").Error; err == nil {
				t.Error("an audit line was updated")
			}
			if err := db.Gorm.Exec("DELETE FROM link_audit").Error; err == nil {
				t.Error("an audit line was deleted")
			}
			if entries, _ := db.LinkAudit(ctx, 0, 0, 10); len(entries) != 1 || entries[0].Reason == "rewritten" {
				t.Errorf("audit after the attempts: %+v", entries)
			}
		})
	}
}
