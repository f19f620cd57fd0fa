package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

type idEnv struct {
	srv *Server
	db  *store.DB
	sim *wxsim.Simulator
	sms *sms.LogSender
}

// newIdentityEnv wires the identity routes to real clients talking to the
// simulator over HTTP, and a real SQLite store.
func newIdentityEnv(t *testing.T) *idEnv {
	t.Helper()
	ctx := context.Background()
	sim, err := wxsim.Start(wxsim.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := wxsim.DefaultConfig()
	wc, err := wechat.New(wechat.Config{AppID: cfg.AppID, AppSecret: cfg.AppSecret, APIBase: sim.WeChatBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wc.Close() })
	wk, err := wecom.New(wecom.Config{CorpID: cfg.CorpID, Secret: cfg.CorpSecret, AgentID: cfg.AgentID, APIBase: sim.WeComBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wk.Close() })
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := db.UseDataKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := SeedOwner(ctx, db, "owner", "fishing-shop-2026"); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	sender := sms.NewLogSender(slogTo(logs))
	rooms, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rooms.Close)
	srv, _ := newTestServer(t, Options{Identity: &Identity{DB: db, DataKey: key, WeChat: wc, WeCom: wk, SMS: sender,
		SMSLimits: DefaultSMSLimits, OwnerUsername: "owner"}, Rental: &Rental{DB: db}, Rooms: &Rooms{Manager: rooms}})
	return &idEnv{srv: srv, db: db, sim: sim, sms: sender}
}

// call sends a JSON request with an optional bearer token.
func (e *idEnv) call(t *testing.T, method, path, token string, in any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body := do(t, e.srv, req)
	out := map[string]any{}
	if len(body) > 0 {
		json.Unmarshal(body, &out) //nolint:errcheck // some answers are empty
	}
	return resp.StatusCode, out
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func token(t *testing.T, status int, out map[string]any) string {
	t.Helper()
	tok, _ := dig(out, "tokens", "access_token").(string)
	if status != 200 || tok == "" {
		t.Fatalf("login: %d %v", status, out)
	}
	return tok
}

// tokenOf logs in through a route and returns the access token.
func (e *idEnv) tokenOf(t *testing.T, method, path, tok string, in any) string {
	t.Helper()
	st, out := e.call(t, method, path, tok, in)
	return token(t, st, out)
}

func (e *idEnv) customerLogin(t *testing.T, openid string) string {
	t.Helper()
	code := e.sim.Login(openid)
	return e.tokenOf(t, "POST", "/api/v1/auth/wechat", "", map[string]string{"code": code})
}

func (e *idEnv) ownerLogin(t *testing.T) string {
	t.Helper()
	return e.tokenOf(t, "POST", "/api/v1/auth/owner", "", map[string]string{"username": "owner", "password": "fishing-shop-2026"})
}

func (e *idEnv) smsCode(t *testing.T, phone string) string {
	t.Helper()
	text, ok := e.sms.Last(phone)
	if !ok {
		t.Fatalf("no SMS to %s", phone)
	}
	return regexp.MustCompile(`\d{6}`).FindString(text)
}

// TestCustomerLandsInImportedMember is the identity issue's main story,
// through the simulator: a new customer logs in with WeChat, proves the
// phone of an imported member and sees that member's tier and points; a
// second WeChat proving the same phone lands in the owner's review queue.
func TestCustomerLandsInImportedMember(t *testing.T) {
	e := newIdentityEnv(t)
	ctx := context.Background()
	if _, err := e.db.ImportMembers(ctx, []store.MemberImport{{Line: 2, MemberNo: "A001", Name: "张三", Phone: "8613800000001", Tier: "gold", Points: 1200,
		JoinedAt: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)}}, nil); err != nil {
		t.Fatal(err)
	}

	alice := e.customerLogin(t, "o-alice")
	if st, out := e.call(t, "GET", "/api/v1/me", alice, nil); st != 200 || dig(out, "member", "tier") != "guest" {
		t.Fatalf("new customer: %d %v", st, out)
	}
	// The same WeChat logs in again: the same account.
	again := e.customerLogin(t, "o-alice")
	_, a1 := e.call(t, "GET", "/api/v1/me", alice, nil)
	_, a2 := e.call(t, "GET", "/api/v1/me", again, nil)
	if dig(a1, "member", "id") != dig(a2, "member", "id") {
		t.Errorf("re-login made another account: %v vs %v", a1, a2)
	}

	// The mini-program's phone button.
	code, err := e.sim.PhoneCode("o-alice", "13800000001")
	if err != nil {
		t.Fatal(err)
	}
	st, out := e.call(t, "POST", "/api/v1/auth/phone", alice, map[string]string{"code": code})
	if st != 200 || out["action"] != string(rental.LinkMoveIdentity) {
		t.Fatalf("phone button: %d %v", st, out)
	}
	_, me := e.call(t, "GET", "/api/v1/me", alice, nil)
	if dig(me, "member", "member_no") != "A001" || dig(me, "member", "tier") != "gold" || dig(me, "member", "points") != float64(1200) || dig(me, "member", "phone") != "86138****0001" {
		t.Fatalf("after proving the phone: %v", me)
	}
	// A used phone code is refused by WeChat (single use).
	if st, _ := e.call(t, "POST", "/api/v1/auth/phone", alice, map[string]string{"code": code}); st == 200 {
		t.Error("a used phone code was accepted")
	}

	// Bob proves the same phone by SMS: review, not relink.
	bob := e.customerLogin(t, "o-bob")
	if st, out := e.call(t, "POST", "/api/v1/auth/sms/send", "", map[string]string{"phone": "138 0000 0001"}); st != 200 {
		t.Fatalf("sms send: %d %v", st, out)
	}
	st, out = e.call(t, "POST", "/api/v1/auth/sms/verify", bob, map[string]string{"phone": "13800000001", "code": e.smsCode(t, "8613800000001")})
	if st != 200 || out["action"] != string(rental.LinkReview) || out["review_id"] == nil {
		t.Fatalf("conflicting phone: %d %v", st, out)
	}
	if _, me := e.call(t, "GET", "/api/v1/me", bob, nil); dig(me, "member", "member_no") != nil {
		t.Errorf("bob was linked silently: %v", me)
	}
	owner := e.ownerLogin(t)
	st, out = e.call(t, "GET", "/api/v1/owner/links", owner, nil)
	reviews, _ := out["reviews"].([]any)
	if st != 200 || len(reviews) != 1 {
		t.Fatalf("review queue: %d %v", st, out)
	}
	id := int(dig(reviews[0].(map[string]any), "id").(float64))
	st, out = e.call(t, "POST", "/api/v1/owner/links/"+strconv.Itoa(id), owner, map[string]string{"decision": "reject", "reason": "号码不是本人 (not his number)"})
	if st != 200 || dig(out, "review", "status") != "rejected" {
		t.Fatalf("decide: %d %v", st, out)
	}
	st, out = e.call(t, "GET", "/api/v1/owner/audit", owner, nil)
	if entries, _ := out["entries"].([]any); st != 200 || len(entries) < 3 {
		t.Errorf("audit: %d %v", st, out)
	}
}

func TestSMSLoginAndLimits(t *testing.T) {
	e := newIdentityEnv(t)
	if st, _ := e.call(t, "POST", "/api/v1/auth/sms/send", "", map[string]string{"phone": "13900000009"}); st != 200 {
		t.Fatalf("send: %d", st)
	}
	// One code a minute per phone.
	st, out := e.call(t, "POST", "/api/v1/auth/sms/send", "", map[string]string{"phone": "13900000009"})
	if st != 429 || dig(out, "error", "code") != "rate_limited" {
		t.Errorf("second send within a minute: %d %v", st, out)
	}
	// Wrong codes count; the right one logs in as a new guest with that phone.
	for i := 0; i < 2; i++ {
		if st, _ := e.call(t, "POST", "/api/v1/auth/sms/verify", "", map[string]string{"phone": "13900000009", "code": "000000"}); st != 401 {
			t.Errorf("wrong code: %d", st)
		}
	}
	st, out = e.call(t, "POST", "/api/v1/auth/sms/verify", "", map[string]string{"phone": "13900000009", "code": e.smsCode(t, "8613900000009")})
	tok := token(t, st, out)
	if out["new"] != true || dig(out, "member", "tier") != "guest" {
		t.Errorf("sms login: %v", out)
	}
	if st, me := e.call(t, "GET", "/api/v1/me", tok, nil); st != 200 || dig(me, "member", "phone") != "86139****0009" {
		t.Errorf("me: %d %v", st, me)
	}
	// Bad input is a clear 400, not a crash.
	for _, in := range []any{map[string]string{"phone": "hello"}, "not an object"} {
		if st, out := e.call(t, "POST", "/api/v1/auth/sms/send", "", in); st != 400 || dig(out, "error", "message") == "" {
			t.Errorf("bad input %v: %d %v", in, st, out)
		}
	}
	// Logout ends the session at once; its refresh token dies with it.
	e.call(t, "POST", "/api/v1/auth/sms/send", "", map[string]string{"phone": "13700000007"})
	st, out = e.call(t, "POST", "/api/v1/auth/sms/verify", "", map[string]string{"phone": "13700000007", "code": e.smsCode(t, "8613700000007")})
	tok2 := token(t, st, out)
	refresh, _ := dig(out, "tokens", "refresh_token").(string)
	st, out = e.call(t, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
	tok3 := token(t, st, out)
	if st, _ := e.call(t, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 {
		t.Errorf("a rotated refresh token worked twice: %d", st)
	}
	if st, _ := e.call(t, "POST", "/api/v1/auth/logout", tok3, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	for _, tk := range []string{tok2, tok3} {
		if st, _ := e.call(t, "GET", "/api/v1/me", tk, nil); st != 401 {
			t.Errorf("token after logout: %d", st)
		}
	}
}

func TestStaffAndOwnerLogin(t *testing.T) {
	e := newIdentityEnv(t)
	owner := e.ownerLogin(t)
	if st, _ := e.call(t, "POST", "/api/v1/owner/staff", owner, map[string]string{"wecom_userid": "laowang", "name": "老王"}); st != 200 {
		t.Fatalf("register staff: %d", st)
	}
	code, _ := e.sim.OAuthCode("laowang")
	staff := e.tokenOf(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code})
	if st, out := e.call(t, "GET", "/api/v1/staff/me", staff, nil); st != 200 || dig(out, "staff", "name") != "老王" {
		t.Errorf("staff me: %d %v", st, out)
	}
	code, _ = e.sim.OAuthCode("xiaoli")
	if st, out := e.call(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code}); st != 403 {
		t.Errorf("unregistered staff: %d %v", st, out)
	}
	// Deactivating a staff member ends their sessions.
	e.call(t, "POST", "/api/v1/owner/staff", owner, map[string]any{"wecom_userid": "laowang", "name": "老王", "active": false})
	if st, _ := e.call(t, "GET", "/api/v1/staff/me", staff, nil); st != 401 {
		t.Errorf("deactivated staff still in: %d", st)
	}
	// Owner password: wrong tries are limited; change ends other sessions.
	for i := 0; i < 5; i++ {
		e.call(t, "POST", "/api/v1/auth/owner", "", map[string]string{"username": "owner", "password": "guess"})
	}
	if st, _ := e.call(t, "POST", "/api/v1/auth/owner", "", map[string]string{"username": "owner", "password": "fishing-shop-2026"}); st != 429 {
		t.Errorf("6th try after 5 failures: %d", st)
	}
	if st, _ := e.call(t, "POST", "/api/v1/owner/password", owner, map[string]string{"current": "fishing-shop-2026", "new": "short"}); st != 400 {
		t.Errorf("short password: %d", st)
	}
	if st, _ := e.call(t, "POST", "/api/v1/owner/password", owner, map[string]string{"current": "fishing-shop-2026", "new": "a-much-longer-password"}); st != 204 {
		t.Errorf("change password: %d", st)
	}
	if st, _ := e.call(t, "GET", "/api/v1/owner/staff", owner, nil); st != 401 {
		t.Errorf("old owner session after a password change: %d", st)
	}
}

func TestOwnerImportAPI(t *testing.T) {
	e := newIdentityEnv(t)
	owner := e.ownerLogin(t)
	upload := func(csv string) (int, map[string]any) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "members.csv")
		fw.Write([]byte(csv)) //nolint:errcheck
		mw.Close()
		req := httptest.NewRequest("POST", "/api/v1/owner/members/import", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, body := do(t, e.srv, req)
		out := map[string]any{}
		json.Unmarshal(body, &out) //nolint:errcheck
		return resp.StatusCode, out
	}
	st, out := upload("member_no,name,phone,tier,points,joined_at\nA1,张三,13800000001,gold,5,2024-01-01\nA2,李四,123,gold,5,2024-01-01\n")
	rows, _ := dig(out, "error", "rows").([]any)
	if st != 400 || dig(out, "error", "code") != "invalid_rows" || len(rows) != 1 || dig(rows[0].(map[string]any), "line") != float64(3) {
		t.Fatalf("bad file: %d %v", st, out)
	}
	if _, page := e.call(t, "GET", "/api/v1/owner/members", owner, nil); len(page["members"].([]any)) != 0 {
		t.Error("a refused file imported rows")
	}
	st, out = upload("member_no,name,phone,tier,points,joined_at\nA1,张三,13800000001,gold,5,2024-01-01\n")
	if st != 200 || dig(out, "report", "created") != float64(1) {
		t.Fatalf("good file: %d %v", st, out)
	}
	if _, page := e.call(t, "GET", "/api/v1/owner/members?q=张", owner, nil); len(page["members"].([]any)) != 1 {
		t.Errorf("search: %v", page)
	}
}

// TestEveryRouteRefusesAnonymousAndWrongRole walks every registered /api/v1
// route: a protected one refuses a call without a token (401) and a call
// with a token of a role it does not admit (403).
func TestEveryRouteRefusesAnonymousAndWrongRole(t *testing.T) {
	e := newIdentityEnv(t)
	owner := e.ownerLogin(t)
	e.call(t, "POST", "/api/v1/owner/staff", owner, map[string]string{"wecom_userid": "laowang", "name": "老王"})
	code, _ := e.sim.OAuthCode("laowang")
	tokens := map[rental.Role]string{
		rental.RoleOwner:    owner,
		rental.RoleCustomer: e.customerLogin(t, "o-walker"),
		rental.RoleStaff:    e.tokenOf(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code}),
	}
	checked := 0
	for _, r := range e.srv.App().GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == "HEAD" {
			continue
		}
		roles, ok := e.srv.roles[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("%s %s is not registered through Server.api (no roles recorded)", r.Method, r.Path)
			continue
		}
		if len(roles) == 0 {
			continue // public: login and refresh
		}
		path := strings.ReplaceAll(r.Path, ":id", "1")
		if st, out := e.call(t, r.Method, path, "", nil); st != 401 {
			t.Errorf("anonymous %s %s: %d %v", r.Method, r.Path, st, out)
		}
		for role, tok := range tokens {
			admitted := false
			for _, ar := range roles {
				admitted = admitted || ar == role
			}
			if admitted {
				continue
			}
			if st, out := e.call(t, r.Method, path, tok, nil); st != 403 {
				t.Errorf("%s calling %s %s: %d %v", role, r.Method, r.Path, st, out)
			}
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d protected routes walked", checked)
	}
	// Forged and expired tokens.
	for _, bad := range []string{"garbage", tokens[rental.RoleOwner] + "x"} {
		if st, _ := e.call(t, "GET", "/api/v1/owner/staff", bad, nil); st != 401 {
			t.Errorf("bad token accepted: %d", st)
		}
	}
}
