package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/rental"
)

func TestFeatureBucketStickyAndEven(t *testing.T) {
	// Stable across restarts and instances: a pure function of key and
	// member, recomputed here independently.
	for _, id := range []int64{1, 42, 987654321} {
		sum := sha256.Sum256([]byte(fmt.Sprintf("video_help\x00%d", id)))
		if want := int(binary.BigEndian.Uint64(sum[:8]) % 10000); FeatureBucket("video_help", id) != want {
			t.Errorf("bucket(%d) = %d, want %d", id, FeatureBucket("video_help", id), want)
		}
	}
	const n = 20000
	for _, pct := range []int{1, 10, 50, 90} {
		fl := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: pct}
		on := 0
		for id := int64(1); id <= n; id++ {
			if decideFlag(fl, FeatureSubject{MemberID: id, Tier: "guest"}) {
				on++
			}
		}
		got := float64(on) / n * 100
		// 20000 draws: the standard error at 50% is 0.35 points; 1.5 is
		// over four of them.
		if d := got - float64(pct); d > 1.5 || d < -1.5 {
			t.Errorf("%d%%: %.2f%% of members on", pct, got)
		}
	}
	// Raising the percentage only adds members; flags are independent.
	a10 := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: 10}
	a20 := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: 20}
	b50 := store.FeatureFlag{Key: "assistant", Enabled: true, Percent: 50}
	a50 := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: 50}
	both := 0
	for id := int64(1); id <= n; id++ {
		s := FeatureSubject{MemberID: id}
		if decideFlag(a10, s) && !decideFlag(a20, s) {
			t.Fatalf("member %d in at 10%% but out at 20%%", id)
		}
		if decideFlag(a50, s) && decideFlag(b50, s) {
			both++
		}
	}
	if got := float64(both) / n; got < 0.23 || got > 0.27 {
		t.Errorf("two 50%% flags overlap on %.3f of members, want ≈ 0.25 (independent)", got)
	}
}

func TestFeatureDecision(t *testing.T) {
	fl := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: 0, Tiers: []string{"gold", "silver"},
		Allow: []store.FeatureListEntry{{Entry: "VIP1", MemberID: 7}, {Entry: "staff:laowang", Staff: "laowang"}},
		Deny:  []store.FeatureListEntry{{Entry: "VIP9", MemberID: 9}}}
	var inGold int64 // a member whose bucket is below 50
	for id := int64(100); ; id++ {
		if FeatureBucket("video_help", id) < 5000 {
			inGold = id
			break
		}
	}
	half := fl
	half.Percent = 50
	full := store.FeatureFlag{Key: "video_help", Enabled: true, Percent: 100}
	paused := full
	now := time.Now()
	paused.PausedAt = &now
	pausedAllow := fl
	pausedAllow.PausedAt = &now
	cases := []struct {
		name string
		fl   store.FeatureFlag
		s    FeatureSubject
		want bool
	}{
		{"allow list wins over 0%", fl, FeatureSubject{MemberID: 7, Tier: "guest"}, true},
		{"staff tester", fl, FeatureSubject{Staff: "laowang"}, true},
		{"other staff", fl, FeatureSubject{Staff: "xiaoli"}, false},
		{"0% otherwise", fl, FeatureSubject{MemberID: inGold, Tier: "gold"}, false},
		{"50% gold in bucket", half, FeatureSubject{MemberID: inGold, Tier: "gold"}, true},
		{"50% wrong tier", half, FeatureSubject{MemberID: inGold, Tier: "guest"}, false},
		{"full rollout", full, FeatureSubject{MemberID: 9}, true},
		{"deny list", store.FeatureFlag{Key: "x", Enabled: true, Percent: 100, Deny: fl.Deny}, FeatureSubject{MemberID: 9}, false},
		{"anonymous, fully on", full, FeatureSubject{}, true},
		{"anonymous, partly on", half, FeatureSubject{}, false},
		{"paused", paused, FeatureSubject{MemberID: inGold}, false},
		{"paused keeps testers", pausedAllow, FeatureSubject{MemberID: 7}, true},
		{"disabled", store.FeatureFlag{Key: "x", Percent: 100}, FeatureSubject{MemberID: 1}, false},
	}
	for _, c := range cases {
		if got := decideFlag(c.fl, c.s); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

type featEnv struct {
	*idEnv
	f     *Features
	owner string
}

func newFeatEnv(t *testing.T) *featEnv {
	t.Helper()
	e := newIdentityEnv(t)
	f, err := NewFeatures(context.Background(), e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.MountFeatures(f)
	return &featEnv{idEnv: e, f: f, owner: e.ownerLogin(t)}
}

func TestFeatureRoutes(t *testing.T) {
	e := newFeatEnv(t)
	ctx := context.Background()

	// Defaults: every flag fully on, for anyone.
	st, out := e.call(t, "GET", "/api/v1/features", "", nil)
	if st != 200 || dig(out, "features", "video_help") != true || dig(out, "features", "assistant") != true || dig(out, "features", "in_app_chat") != true {
		t.Fatalf("anonymous features: %d %v", st, out)
	}
	if st, _ := e.call(t, "GET", "/api/v1/features", "Bearer-garbage", nil); st != 401 {
		t.Errorf("bad token: %d", st)
	}
	for _, r := range []string{"GET /api/v1/owner/features", "PUT /api/v1/owner/features/:key", "GET /api/v1/owner/features/audit", "POST /api/v1/owner/features/guard"} {
		if roles := e.srv.roles[r]; len(roles) != 1 || roles[0] != ownerOnly[0] {
			t.Errorf("%s roles %v", r, roles)
		}
	}
	cust := e.customerLogin(t, "o-feat")
	if st, _ := e.call(t, "PUT", "/api/v1/owner/features/video_help", cust, map[string]any{"percent": 5}); st != 403 {
		t.Errorf("customer changing a flag: %d", st)
	}

	// The owner rolls video help back to 0% for everyone but this customer.
	st, me := e.call(t, "GET", "/api/v1/me", cust, nil)
	memberID := int64(dig(me, "member", "id").(float64))
	if st != 200 || memberID == 0 {
		t.Fatalf("me: %d %v", st, me)
	}
	st, out = e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 0, "allow": []string{fmt.Sprint(memberID), "staff:laowang"}, "reason": "先给老顾客试"})
	if st != 200 || dig(out, "flag", "percent") != float64(0) {
		t.Fatalf("update: %d %v", st, out)
	}
	if _, out = e.call(t, "GET", "/api/v1/features", "", nil); dig(out, "features", "video_help") != false {
		t.Errorf("anonymous still gets video_help at 0%%: %v", out)
	}
	if _, out = e.call(t, "GET", "/api/v1/features", cust, nil); dig(out, "features", "video_help") != true {
		t.Errorf("allow-listed customer lacks video_help: %v", out)
	}
	other := e.customerLogin(t, "o-other")
	if _, out = e.call(t, "GET", "/api/v1/features", other, nil); dig(out, "features", "video_help") != false {
		t.Errorf("another customer gets video_help at 0%%: %v", out)
	}
	if !e.f.Enabled(ctx, memberID, "guest", FeatureVideoHelp) || e.f.Enabled(ctx, memberID+1000, "guest", FeatureVideoHelp) {
		t.Error("Go API disagrees with the route")
	}
	// Bad input changes nothing.
	for _, bad := range []map[string]any{{"percent": 101}, {"allow": []string{"no-such-member"}}, {"kpi": "vibes"}, {"threshold": 2}, {"version": 1, "percent": 3}} {
		if st, out := e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, bad); st != 400 && st != 409 {
			t.Errorf("%v: %d %v", bad, st, out)
		}
	}
	if st, _ := e.call(t, "PUT", "/api/v1/owner/features/no_such_flag", e.owner, map[string]any{"percent": 3}); st != 404 {
		t.Errorf("unknown flag: %d", st)
	}
	// Tier targeting: 100% of gold only.
	e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 100, "allow": []string{}, "tiers": []string{"gold"}})
	if _, out = e.call(t, "GET", "/api/v1/features", other, nil); dig(out, "features", "video_help") != false {
		t.Errorf("guest gets a gold-only flag: %v", out)
	}
	if !e.f.Enabled(ctx, 12345, "gold", FeatureVideoHelp) {
		t.Error("gold member lacks a 100% gold flag")
	}

	// Every change is in the audit, newest first, with before and after.
	st, out = e.call(t, "GET", "/api/v1/owner/features/audit?flag=video_help", e.owner, nil)
	entries, _ := out["entries"].([]any)
	if st != 200 || len(entries) != 2 {
		t.Fatalf("audit: %d %v", st, out)
	}
	first := entries[1].(map[string]any)
	if first["actor"] != "owner:owner" || first["reason"] != "先给老顾客试" || dig(first, "before", "percent") != float64(100) || dig(first, "after", "percent") != float64(0) {
		t.Errorf("audit line %v", first)
	}
	// A second instance reading the same database agrees after a reload.
	f2, err := NewFeatures(ctx, e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Enabled(ctx, 12345, "guest", FeatureVideoHelp) || !f2.Enabled(ctx, 12345, "gold", FeatureVideoHelp) {
		t.Error("a fresh instance decides differently")
	}

	// Rolled to 10% over a thousand members, it reaches about a hundred,
	// and the same hundred after a restart.
	now := time.Now().UTC()
	for i := 0; i < 1000; i++ {
		if err := e.db.Gorm.Exec(`INSERT INTO members (name, tier, joined_at, created_at, updated_at) VALUES ('m', 'silver', ?, ?, ?)`, now, now, now).Error; err != nil {
			t.Fatal(err)
		}
	}
	e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 10, "tiers": []string{}})
	reach := func(f *Features) (on []int64) {
		members, err := e.db.MemberTiers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if f.Enabled(ctx, m.ID, m.Tier, FeatureVideoHelp) {
				on = append(on, m.ID)
			}
		}
		return on
	}
	_, out = e.call(t, "GET", "/api/v1/owner/features", e.owner, nil)
	var vh map[string]any
	for _, x := range out["flags"].([]any) {
		if x.(map[string]any)["key"] == FeatureVideoHelp {
			vh = x.(map[string]any)
		}
	}
	if fmt.Sprint(out["tiers"]) != "[guest silver]" {
		t.Errorf("tiers of the members: %v", out["tiers"])
	}
	if _, ok := vh["deny"].([]any); !ok {
		t.Errorf("an empty deny list is %v, want []", vh["deny"])
	}
	n := vh["reach"].(float64)
	if vh["members"] != float64(1002) || n < 75 || n > 125 || int(n) != len(reach(e.f)) {
		t.Errorf("10%% of 1002 members reaches %v (members %v)", n, vh["members"])
	}
	f3, err := NewFeatures(ctx, e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := reach(e.f), reach(f3); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("a restarted instance puts other members in the 10%")
	}
}

// TestFeatureRoutesRefuseWrongRoles walks every route the owner console
// adds, as TestEveryRouteRefusesAnonymousAndWrongRole does for the rest.
func TestFeatureRoutesRefuseWrongRoles(t *testing.T) {
	e := newFeatEnv(t)
	e.srv.MountQuickHelp(&QuickHelp{DB: e.db, Features: e.f})
	e.srv.MountKPIs(&KPIs{DB: e.db})
	e.call(t, "POST", "/api/v1/owner/staff", e.owner, map[string]string{"wecom_userid": "laowang", "name": "老王"})
	code, _ := e.sim.OAuthCode("laowang")
	tokens := map[rental.Role]string{
		rental.RoleOwner:    e.owner,
		rental.RoleCustomer: e.customerLogin(t, "o-walk"),
		rental.RoleStaff:    e.tokenOf(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code}),
	}
	walked := 0
	for route, roles := range e.srv.roles {
		method, path, _ := strings.Cut(route, " ")
		if !strings.Contains(path, "/features") && !strings.Contains(path, "/quickhelp") && !strings.Contains(path, "/kpis") {
			continue
		}
		if len(roles) == 0 {
			continue
		}
		path = strings.NewReplacer(":id", "1", ":key", FeatureVideoHelp).Replace(path)
		if st, _ := e.call(t, method, path, "", nil); st != 401 {
			t.Errorf("anonymous %s: %d", route, st)
		}
		for role, tok := range tokens {
			if slices.Contains(roles, role) {
				continue
			}
			if st, _ := e.call(t, method, path, tok, nil); st != 403 {
				t.Errorf("%s calling %s: %d", role, route, st)
			}
		}
		walked++
	}
	if walked != 12 {
		t.Errorf("walked %d protected routes, want 12", walked)
	}
}

// seedGuardCalls gives each member calls: missed ones at the cohort's or
// the rest's rate.
func seedGuardCalls(t *testing.T, db *store.DB, f store.FeatureFlag, members []int64, perMember int, cohortMissed, restMissed float64, at time.Time) {
	t.Helper()
	n := 0
	for _, m := range members {
		rate := restMissed
		if decideFlag(f, FeatureSubject{MemberID: m, Tier: "guest"}) {
			rate = cohortMissed
		}
		missed := int(rate*float64(perMember) + 0.5)
		for i := 0; i < perMember; i++ {
			n++
			var ans any
			state := "ended"
			if i < missed {
				state = "missed"
			} else {
				ans = at.Add(5 * time.Second)
			}
			if err := db.Gorm.Exec(`INSERT INTO calls (room_id, kind, source, member_id, state, started_at, answered_at) VALUES (?, 'video', 'quick_help', ?, ?, ?, ?)`,
				fmt.Sprintf("g%d-%d", at.Unix(), n), m, state, at, ans).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFeatureGuardPausesAndTellsOwner(t *testing.T) {
	e := newFeatEnv(t)
	ctx := context.Background()
	e.f.OwnerWeCom = "laowang" // a WeCom user the simulator knows
	// 60 guests; video help at 50%.
	var members []int64
	for i := 0; i < 60; i++ {
		now := time.Now().UTC()
		if err := e.db.Gorm.Exec(`INSERT INTO members (name, tier, joined_at, created_at, updated_at) VALUES ('g', 'guest', ?, ?, ?)`, now, now, now).Error; err != nil {
			t.Fatal(err)
		}
		var id int64
		e.db.Gorm.Raw(`SELECT MAX(id) FROM members`).Scan(&id)
		members = append(members, id)
	}
	if st, out := e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 50, "min_sample": 40, "threshold": 0.15, "window_hours": 24}); st != 200 {
		t.Fatalf("update: %d %v", st, out)
	}
	fl := e.f.Flags()[3] // video_help sorts last
	if fl.Key != FeatureVideoHelp {
		t.Fatalf("flag order: %s", fl.Key)
	}

	// Noise: both groups miss about a fifth of their calls.
	seedGuardCalls(t, e.db, fl, members, 4, 0.25, 0.25, time.Now().Add(-time.Hour))
	figs, err := e.f.Guard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var vf GuardFigures
	for _, g := range figs {
		if g.Flag == FeatureVideoHelp {
			vf = g
		}
	}
	if vf.Verdict != "ok" || vf.CohortTotal+vf.RestTotal != 240 || e.f.Flags()[3].Paused() {
		t.Fatalf("noise paused or misjudged: %+v", vf)
	}
	// A small sample is not judged, whatever it shows.
	if st, _ := e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"min_sample": 1000}); st != 200 {
		t.Fatal(st)
	}
	seedGuardCalls(t, e.db, fl, members, 4, 1, 0, time.Now().Add(-30*time.Minute))
	if figs, _ = e.f.Guard(ctx); figs[3].Verdict != "small_sample" || e.f.Flags()[3].Paused() {
		t.Fatalf("small sample: %+v", figs[3])
	}
	// A real drop: the cohort's calls now mostly go unanswered.
	if st, _ := e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"min_sample": 40}); st != 200 {
		t.Fatal(st)
	}
	figs, err = e.f.Guard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := figs[3]
	// Hand-computed: cohort c members × 8 calls, 1 + 4 missed each; rest 1 missed each.
	c := 0
	for _, m := range members {
		if decideFlag(fl, FeatureSubject{MemberID: m, Tier: "guest"}) {
			c++
		}
	}
	if g.Verdict != "paused" || g.CohortTotal != 8*c || g.CohortBad != 5*c || g.RestTotal != 8*(60-c) || g.RestBad != 60-c {
		t.Fatalf("drop: %+v (cohort %d members)", g, c)
	}
	after := e.f.Flags()[3]
	if !after.Paused() || !strings.Contains(after.PausedReason, "护栏") {
		t.Fatalf("not paused: %+v", after)
	}
	if e.f.Enabled(ctx, members[0], "guest", FeatureVideoHelp) {
		t.Error("paused flag still on")
	}
	st, out := e.call(t, "GET", "/api/v1/owner/features/audit?flag=video_help&limit=1", e.owner, nil)
	line := out["entries"].([]any)[0].(map[string]any)
	if st != 200 || line["actor"] != "guard" || line["action"] != "pause" || dig(line, "figures", "cohort_bad") != float64(5*c) {
		t.Fatalf("audit of the pause: %v", line)
	}
	// A second round does not pause (or notify) twice.
	if _, err := e.f.Guard(ctx); err != nil {
		t.Fatal(err)
	}

	// The owner hears of it in WeCom, through the outbox and the simulator.
	cfg := wxsim.DefaultConfig()
	wk, err := wecom.New(wecom.Config{CorpID: cfg.CorpID, Secret: cfg.CorpSecret, AgentID: cfg.AgentID, APIBase: e.sim.WeComBase(), Now: e.sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wk.Close() })
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w := &store.OutboxWorker{DB: e.db, Handlers: map[string]store.Deliver{KindOwnerNotice: OwnerNotices(wk)}, Poll: 20 * time.Millisecond}
	go func() { w.Run(wctx); close(done) }()
	defer func() { cancel(); <-done }()
	var got []wxsim.WeComDelivery
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = e.sim.StaffInbox("laowang"); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || !strings.Contains(got[0].Content, "video_help") || !strings.Contains(got[0].Content, "自动暂停") {
		t.Fatalf("owner's WeCom inbox: %+v", got)
	}

	// The owner resumes: audited as a resume.
	if st, out := e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"paused": false, "reason": "已排查"}); st != 200 || dig(out, "flag", "paused_at") != nil {
		t.Fatalf("resume: %d %v", st, out)
	}
	_, out = e.call(t, "GET", "/api/v1/owner/features/audit?flag=video_help&limit=1", e.owner, nil)
	if line := out["entries"].([]any)[0].(map[string]any); line["action"] != "resume" || line["actor"] != "owner:owner" || line["reason"] != "已排查" {
		t.Errorf("audit of the resume: %v", line)
	}
}

// TestGuardVerdict: the guard rail's statistics on hand-made counts.
func TestGuardVerdict(t *testing.T) {
	fl := store.FeatureFlag{MinSample: 20, Threshold: 0.15}
	cases := []struct {
		name                       string
		cBad, cTotal, rBad, rTotal int
		want                       string
		wantZ                      float64
	}{
		// 40% vs 20% on 30 each: twenty points worse, but z = 0.2 /
		// √(0.3·0.7·(2/30)) = 1.69 — bad luck that size happens.
		{"noise on a small sample", 12, 30, 6, 30, "ok", 1.69},
		// 50% vs 10% on 50 each: z = 0.4 / √(0.3·0.7·(2/50)) = 4.36.
		{"a clear drop", 25, 50, 5, 50, "paused", 4.36},
		// 15% vs 5% on 400 each: significant (z = 0.1 / √(0.1·0.9·(2/400)) =
		// 4.71) but ten points is
		// under the fifteen the owner set.
		{"significant but under the threshold", 60, 400, 20, 400, "ok", 4.71},
		// The cohort does better.
		{"better", 5, 50, 25, 50, "ok", -4.36},
		{"too few", 19, 19, 0, 100, "small_sample", 0},
		{"everything fails on both sides", 30, 30, 30, 30, "ok", 0},
		{"nothing fails in the rest", 30, 30, 0, 30, "paused", 7.75},
	}
	for _, c := range cases {
		g := GuardFigures{CohortBad: c.cBad, CohortTotal: c.cTotal, RestBad: c.rBad, RestTotal: c.rTotal}
		assessGuard(&g, fl)
		if g.Verdict != c.want || g.Z != c.wantZ {
			t.Errorf("%s: %s z=%v, want %s z=%v", c.name, g.Verdict, g.Z, c.want, c.wantZ)
		}
	}
}

// BenchmarkFeatureEnabled is the cost of one flag decision on a request
// path: a read lock, a map look-up and a SHA-256.
func BenchmarkFeatureEnabled(b *testing.B) {
	f := &Features{flags: map[string]store.FeatureFlag{FeatureVideoHelp: {Key: FeatureVideoHelp, Enabled: true, Percent: 10, Tiers: []string{"gold", "silver"}}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := int64(0)
		for pb.Next() {
			id++
			f.Enabled(ctx, id, "gold", FeatureVideoHelp)
		}
	})
}
