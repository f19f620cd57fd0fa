package wxsim

import (
	"net/url"
	"testing"
	"time"
)

func TestMiniProgramTokenCredentials(t *testing.T) {
	s := newSim(t, nil)
	cases := []struct {
		name  string
		query string
		code  int
	}{
		{"wrong secret", "grant_type=client_credential&appid=" + s.cfg.AppID + "&secret=nope", errInvalidAppSecret},
		{"wrong appid", "grant_type=client_credential&appid=wx000&secret=" + s.cfg.AppSecret, errInvalidAppID},
		{"missing appid", "grant_type=client_credential&secret=" + s.cfg.AppSecret, errMissingAppID},
		{"bad grant_type", "grant_type=password&appid=" + s.cfg.AppID + "&secret=" + s.cfg.AppSecret, errInvalidGrantType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, httpGet(t, s.WeChatBase()+"/cgi-bin/token?"+tc.query), tc.code)
		})
	}
	r := httpGet(t, s.WeChatBase()+"/cgi-bin/token?grant_type=client_credential&appid="+s.cfg.AppID+"&secret="+s.cfg.AppSecret)
	if r["expires_in"] != float64(7200) || len(r.str("access_token")) < 100 {
		t.Fatalf("token reply %v", r)
	}
	if _, has := r["errcode"]; has {
		t.Errorf("successful token reply carries errcode: %v", r)
	}
}

// probe calls a business API that needs nothing but a token; with a valid
// token it fails later, on the unknown openid (40003).
func probeMP(t *testing.T, s *Simulator, token string) int {
	t.Helper()
	return httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", token), textMsg("nobody", "hi")).code()
}

func TestMiniProgramTokenLifecycle(t *testing.T) {
	s := newSim(t, nil)
	t1 := mpToken(t, s)

	if got := httpPost(t, s.WeChatBase()+"/cgi-bin/message/custom/send", textMsg("x", "hi")).code(); got != errMissingToken {
		t.Errorf("missing token: %d, want 41001", got)
	}
	if got := probeMP(t, s, "garbled"+t1[7:]); got != errInvalidCredential {
		t.Errorf("garbled token: %d, want 40001", got)
	}
	if got := probeMP(t, s, wecomToken(t, s)); got != errInvalidCredential {
		t.Errorf("WeCom token on mini-program API: %d, want 40001", got)
	}
	if got := probeMP(t, s, t1); got != errInvalidOpenID {
		t.Fatalf("fresh token: %d, want 40003 (token accepted)", got)
	}

	// A second /cgi-bin/token call supersedes t1, which survives 5 minutes.
	s.Advance(time.Minute)
	t2 := mpToken(t, s)
	if t2 == t1 {
		t.Fatal("/cgi-bin/token returned the same token twice")
	}
	s.Advance(5*time.Minute - time.Second)
	if got := probeMP(t, s, t1); got != errInvalidOpenID {
		t.Errorf("superseded token inside overlap: %d, want accepted", got)
	}
	s.Advance(time.Second)
	if got := probeMP(t, s, t1); got != errInvalidCredential {
		t.Errorf("superseded token after overlap: %d, want 40001", got)
	}

	// t2 expires naturally 7200 s after issue.
	s.Advance(7200*time.Second - 5*time.Minute - time.Second)
	if got := probeMP(t, s, t2); got != errInvalidOpenID {
		t.Errorf("token 1 s before expiry: %d, want accepted", got)
	}
	s.Advance(time.Second)
	if got := probeMP(t, s, t2); got != errTokenExpired {
		t.Errorf("expired token: %d, want 42001", got)
	}

	t3 := mpToken(t, s)
	s.InvalidateTokens()
	if got := probeMP(t, s, t3); got != errInvalidCredential {
		t.Errorf("invalidated token: %d, want 40001", got)
	}
	if got := probeMP(t, s, mpToken(t, s)); got != errInvalidOpenID {
		t.Errorf("token after invalidation: %d, want accepted", got)
	}
}

func TestStableToken(t *testing.T) {
	s := newSim(t, nil)
	stable := func(force bool) wxResp {
		return httpPost(t, s.WeChatBase()+"/cgi-bin/stable_token", map[string]any{
			"grant_type": "client_credential", "appid": s.cfg.AppID, "secret": s.cfg.AppSecret, "force_refresh": force,
		})
	}
	a := stable(false)
	s.Advance(10 * time.Minute)
	b := stable(false)
	if a.str("access_token") != b.str("access_token") {
		t.Fatal("stable_token changed without force_refresh")
	}
	if b["expires_in"] != float64(7200-600) {
		t.Errorf("expires_in %v, want remaining lifetime 6600", b["expires_in"])
	}
	// Independent of /cgi-bin/token: minting there does not touch it.
	_ = mpToken(t, s)
	_ = mpToken(t, s)
	s.Advance(6 * time.Minute)
	if got := probeMP(t, s, a.str("access_token")); got != errInvalidOpenID {
		t.Errorf("stable token after /cgi-bin/token calls: %d, want accepted", got)
	}

	c := stable(true)
	if c.str("access_token") == a.str("access_token") {
		t.Fatal("force_refresh returned the old token")
	}
	if got := probeMP(t, s, a.str("access_token")); got != errInvalidCredential {
		t.Errorf("old token after force_refresh: %d, want 40001", got)
	}
	// A second force within 30 s is not honoured.
	s.Advance(10 * time.Second)
	if d := stable(true); d.str("access_token") != c.str("access_token") {
		t.Error("force_refresh within 30 s refreshed")
	}
	s.Advance(30 * time.Second)
	if d := stable(true); d.str("access_token") == c.str("access_token") {
		t.Error("force_refresh after 30 s did not refresh")
	}

	// Within the last 5 minutes a new token is handed out; the old one
	// stays valid until its own expiry.
	cur := stable(false)
	s.Advance(7200*time.Second - 4*time.Minute)
	next := stable(false)
	if next.str("access_token") == cur.str("access_token") || next["expires_in"] != float64(7200) {
		t.Fatalf("no rotation near expiry: %v", next)
	}
	if got := probeMP(t, s, cur.str("access_token")); got != errInvalidOpenID {
		t.Errorf("pre-rotation token before its expiry: %d, want accepted", got)
	}
	if r := httpPost(t, s.WeChatBase()+"/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential", "appid": s.cfg.AppID, "secret": "x"}); r.code() != errInvalidAppSecret {
		t.Errorf("wrong secret: %v", r)
	}
	resp := httpGet(t, s.WeChatBase()+"/cgi-bin/stable_token")
	wantCode(t, "GET stable_token", resp, errRequirePOST)
}

func TestStableTokenForceRefreshDailyLimit(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Rules.StableForcePerDay = 2 })
	body := map[string]any{"grant_type": "client_credential", "appid": s.cfg.AppID, "secret": s.cfg.AppSecret, "force_refresh": true}
	var last string
	for i := range 3 {
		s.Advance(time.Minute)
		tok := httpPost(t, s.WeChatBase()+"/cgi-bin/stable_token", body).str("access_token")
		if refreshed := tok != last; refreshed != (i < 2) {
			t.Errorf("force %d: refreshed=%v", i+1, refreshed)
		}
		last = tok
	}
}

func probeWeCom(t *testing.T, s *Simulator, token string) int {
	t.Helper()
	u := s.WeComBase() + "/cgi-bin/auth/getuserinfo?code=nope"
	if token != "" {
		u += "&access_token=" + url.QueryEscape(token)
	}
	return httpGet(t, u).code()
}

func TestWeComToken(t *testing.T) {
	s := newSim(t, nil)
	for _, tc := range []struct {
		name, query string
		code        int
	}{
		{"wrong corpid", "corpid=ww0&corpsecret=" + url.QueryEscape(s.cfg.CorpSecret), errInvalidAppID},
		{"wrong secret", "corpid=" + s.cfg.CorpID + "&corpsecret=nope", errInvalidCredential},
		{"missing corpid", "corpsecret=x", errMissingAppID},
		{"missing secret", "corpid=" + s.cfg.CorpID, errMissingSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, httpGet(t, s.WeComBase()+"/cgi-bin/gettoken?"+tc.query), tc.code)
		})
	}
	t1 := wecomToken(t, s)
	s.Advance(time.Hour)
	if t2 := wecomToken(t, s); t2 != t1 {
		t.Fatal("gettoken returned a different token while the first is valid")
	}
	if got := probeWeCom(t, s, ""); got != errMissingToken {
		t.Errorf("missing: %d, want 41001", got)
	}
	if got := probeWeCom(t, s, "junk"); got != errInvalidToken {
		t.Errorf("garbled: %d, want 40014", got)
	}
	if got := probeWeCom(t, s, mpToken(t, s)); got != errInvalidToken {
		t.Errorf("mini-program token on WeCom: %d, want 40014", got)
	}
	if got := probeWeCom(t, s, t1); got != errInvalidCode {
		t.Errorf("valid: %d, want 40029 (token accepted, code bad)", got)
	}
	s.Advance(time.Hour)
	if got := probeWeCom(t, s, t1); got != errTokenExpired {
		t.Errorf("expired: %d, want 42001", got)
	}
	t3 := wecomToken(t, s)
	if t3 == t1 {
		t.Fatal("no new token after expiry")
	}
	s.InvalidateTokens()
	if got := probeWeCom(t, s, t3); got != errInvalidToken {
		t.Errorf("invalidated: %d, want 40014", got)
	}
	if wecomToken(t, s) == t3 {
		t.Error("gettoken returned the invalidated token")
	}
}
