package wxsim

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOAuthAuthorizePage: the simulator's open.weixin.qq.com stand-in asks
// who holds the phone, then sends the browser back with a one-time code that
// /cgi-bin/auth/getuserinfo turns into that member's userid; bad parameters
// get an error page and no redirect.
func TestOAuthAuthorizePage(t *testing.T) {
	cfg := DefaultConfig()
	sim, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(q url.Values) *http.Response {
		t.Helper()
		resp, err := noFollow.Get(sim.OpenBase() + "/connect/oauth2/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	q := url.Values{"appid": {cfg.CorpID}, "redirect_uri": {"http://shop.example/staff?x=1"}, "response_type": {"code"},
		"scope": {"snsapi_base"}, "state": {"staff"}, "agentid": {"1000002"}}
	resp := authorize(q)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	staff := sim.StaffUserIDs()
	if resp.StatusCode != 200 || len(staff) == 0 || !strings.Contains(string(page), `data-userid="`+staff[0]+`"`) {
		t.Fatalf("chooser: %d %s", resp.StatusCode, page)
	}
	q.Set("userid", staff[0])
	resp = authorize(q)
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || back.Host != "shop.example" || back.Query().Get("x") != "1" ||
		back.Query().Get("state") != "staff" || back.Query().Get("code") == "" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The code names that member, once (checked through the WeCom API the
	// gateway uses).
	tok := wecomToken(t, sim)
	for i, want := range []string{`"userid":"` + staff[0] + `"`, `"errcode":40029`} {
		r, err := http.Get(withToken(sim.WeComBase(), "/cgi-bin/auth/getuserinfo", tok) + "&code=" + back.Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("getuserinfo #%d: %s, want %s", i+1, body, want)
		}
	}
	for name, bad := range map[string][2]string{
		"foreign appid":     {"appid", "ww-someone-else"},
		"relative redirect": {"redirect_uri", "/staff"},
		"token flow":        {"response_type", "token"},
		"unknown member":    {"userid", "nobody"},
	} {
		bq := url.Values{}
		for k, v := range q {
			bq[k] = v
		}
		bq.Set(bad[0], bad[1])
		resp := authorize(bq)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
