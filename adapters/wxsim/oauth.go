package wxsim

import (
	"html/template"
	"net/http"
	"net/url"
)

// WeCom's web OAuth (网页授权登录). A page opened inside WeCom sends the
// browser to
//
//	https://open.weixin.qq.com/connect/oauth2/authorize?appid=CORPID&redirect_uri=URL
//	    &response_type=code&scope=snsapi_base&agentid=AGENTID&state=STATE#wechat_redirect
//
// and WeCom sends it on to URL?code=CODE&state=STATE; the code is good once,
// for five minutes, at /cgi-bin/auth/getuserinfo. Inside WeCom that happens
// without a page, because WeCom knows who holds the phone. The simulator does
// not, so it asks: a page lists the corp's members, and picking one
// redirects with a code for them. Bad parameters get an error page, as
// WeCom shows one (the browser is not sent back).
const pathOAuthAuthorize = PrefixOpen + "/connect/oauth2/authorize"

var oauthPage = template.Must(template.New("oauth").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>企业微信授权（模拟器）</title>
<style>body{font:16px/1.5 -apple-system,"PingFang SC","WenQuanYi Micro Hei",sans-serif;margin:0;background:#f5f5f5}
main{max-width:420px;margin:40px auto;background:#fff;border-radius:10px;padding:18px}
a{display:block;padding:12px;margin:8px 0;border-radius:8px;background:#2b7cff;color:#fff;text-decoration:none;text-align:center}
.err{color:#c43030}</style></head><body><main>
{{if .Error}}<h1>无法授权</h1><p class="err">{{.Error}}</p>
{{else}}<h1>企业微信授权（模拟器）</h1><p>真实的企业微信会直接识别当前员工；模拟器请选择以谁的身份打开：</p>
{{range .Staff}}<a href="{{.Link}}" data-userid="{{.UserID}}">{{.UserID}}</a>{{end}}{{end}}
</main></body></html>`))

type oauthChoice struct{ UserID, Link string }

func (s *Simulator) oauthRoutes() {
	s.mux.HandleFunc("GET "+pathOAuthAuthorize, s.serveOAuthAuthorize)
}

func (s *Simulator) serveOAuthAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		oauthPage.Execute(w, map[string]any{"Error": msg}) //nolint:errcheck
	}
	if q.Get("appid") != s.cfg.CorpID {
		fail("appid 参数错误：不是本企业的 CorpID")
		return
	}
	if q.Get("response_type") != "code" {
		fail("response_type 必须为 code")
		return
	}
	if sc := q.Get("scope"); sc != "snsapi_base" && sc != "snsapi_privateinfo" {
		fail("scope 参数错误")
		return
	}
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "" {
		fail("redirect_uri 参数错误：须为完整的 http(s) 地址")
		return
	}
	if who := q.Get("userid"); who != "" {
		code, err := s.OAuthCode(who)
		if err != nil {
			fail("不是本企业的成员：" + who)
			return
		}
		bq := back.Query()
		bq.Set("code", code)
		bq.Set("state", q.Get("state"))
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return
	}
	var choices []oauthChoice
	for _, id := range s.StaffUserIDs() {
		cq := url.Values{}
		for k, v := range q {
			cq[k] = v
		}
		cq.Set("userid", id)
		choices = append(choices, oauthChoice{UserID: id, Link: pathOAuthAuthorize + "?" + cq.Encode()})
	}
	if len(choices) == 0 {
		fail("企业里还没有成员")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	oauthPage.Execute(w, map[string]any{"Staff": choices}) //nolint:errcheck
}
