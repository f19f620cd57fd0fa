package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/gateway/browsertest"
	"github.com/tacklegate/tacklegate/rental"
)

// quickHelpFake stands in for the quick-help, feature and call routes the
// owner-console and video work add, with the response shapes agreed for
// them, so the customer page's side of the contract is tested here.
type quickHelpFake struct {
	mu    sync.Mutex
	uses  []string
	calls []map[string]string
}

func (f *quickHelpFake) mount(s *Server) bool {
	for _, r := range []string{"GET /api/v1/quickhelp", "GET /api/v1/features", "POST /api/v1/calls", "POST /api/v1/quickhelp/:id/use"} {
		if _, taken := s.roles[r]; taken {
			return false // the real routes are mounted: this fake would shadow nothing
		}
	}
	s.api("GET", "/quickhelp", anyone, func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"entries": []fiber.Map{
			{"id": "qh-video", "title": "视频验货", "icon": "📹", "action": "video"},
			{"id": "qh-voice", "title": "教我装鱼线", "icon": "🎣", "action": "voice"},
			{"id": "qh-chat", "title": "问问押金", "icon": "💬", "action": "chat", "text": "押金什么时候退？"},
			{"id": "qh-article", "title": "取还时间", "icon": "🕔", "action": "article", "text": "每天 5:30–19:00 取还。", "article_slug": "hours"},
		}})
	})
	s.api("GET", "/features", anyone, func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"features": fiber.Map{"video_help": false}})
	})
	s.api("POST", "/quickhelp/:id/use", customers, func(c *fiber.Ctx) error {
		f.mu.Lock()
		f.uses = append(f.uses, strings.Clone(c.Params("id")))
		f.mu.Unlock()
		return c.SendStatus(fiber.StatusNoContent)
	})
	s.api("POST", "/calls", customers, func(c *fiber.Ctx) error {
		var in map[string]string
		if err := json.Unmarshal(c.Body(), &in); err != nil {
			return err
		}
		f.mu.Lock()
		f.calls = append(f.calls, in)
		f.mu.Unlock()
		return c.JSON(fiber.Map{"call_id": "c-1", "room_id": "r-1", "token": "t", "room_url": "/room/r-1?token=t"})
	})
	return true
}

func (f *quickHelpFake) snapshot() ([]string, []map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.uses...), append([]map[string]string(nil), f.calls...)
}

// TestCustomerPageSMSLoginAndQuickHelp: a customer logs in on the page
// with phone and SMS code; the quick-help row shows the entries (not the
// video one, whose feature is off); a chat entry opens the 客服 tab and
// hands its preset text to the chat widget; a voice entry starts a call and
// goes to its room; each use is counted.
func TestCustomerPageSMSLoginAndQuickHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	fake := &quickHelpFake{}
	mounted := false
	e := newRentalEnvWith(t, storetest.Targets()[0], false, rentalEnvOptions{routes: func(s *Server) { mounted = fake.mount(s) }})
	if !mounted {
		t.Skip("the real quick-help routes are mounted; their own tests cover them")
	}
	ctx := browsertest.New(t, browsertest.Options{})
	waitFor := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			body, _ := browsertest.Eval[string](ctx, `document.body.innerText`)
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, body)
		}
	}

	// Not the demo: no simulated WeChat button; the SMS form logs in.
	const phone = "13800138077"
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/"), chromedp.WaitVisible("#login-sms"),
		chromedp.SendKeys("#login-phone", phone), chromedp.Click("#login-send")); err != nil {
		t.Fatal(err)
	}
	if hidden, _ := browsertest.Eval[bool](ctx, `document.querySelector("#login-sim").classList.contains("hidden")`); !hidden {
		t.Error("the simulated WeChat login shows outside the demo")
	}
	var code string
	deadline := time.Now().Add(10 * time.Second)
	for code == "" && time.Now().Before(deadline) {
		if text, ok := e.sms.Last("86" + phone); ok {
			code = strings.TrimSpace(strings.Split(strings.SplitAfter(text, "验证码是")[1], "，")[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(code) != 6 {
		t.Fatalf("no SMS code for %s", phone)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys("#login-code", code), chromedp.Click("#login-verify"), chromedp.WaitVisible("#quickhelp button")); err != nil {
		t.Fatal(err)
	}
	titles, _ := browsertest.Eval[string](ctx, `[...document.querySelectorAll("#quickhelp button")].map(b => b.dataset.entry).join(",")`)
	if titles != "qh-voice,qh-chat,qh-article" {
		t.Errorf("quick-help entries shown: %q (video_help is off)", titles)
	}

	// The chat entry: the 客服 tab opens and the widget gets the preset text.
	if _, err := browsertest.Eval[bool](ctx, `window.TGChat = {mount(el, opts) { window.mounted = {id: el.id, key: opts.sessionKey, text: opts.presetText}; el.textContent = "chat"; }}; true`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(`#quickhelp [data-entry="qh-chat"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the chat widget", `!!window.mounted && !document.querySelector("#view-chat").classList.contains("hidden")`)
	if got, _ := browsertest.Eval[string](ctx, `JSON.stringify(window.mounted)`); got != `{"id":"view-chat","key":"customer","text":"押金什么时候退？"}` {
		t.Errorf("TGChat.mount got %s", got)
	}

	// The voice entry starts a call and goes to the room.
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs [data-tab="home"]`), chromedp.WaitVisible(`#quickhelp [data-entry="qh-voice"]`),
		chromedp.Click(`#quickhelp [data-entry="qh-voice"]`)); err != nil {
		t.Fatal(err)
	}
	// The page navigates away: poll from outside, across the navigation.
	var where string
	for deadline := time.Now().Add(15 * time.Second); where != "/room/r-1" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		where, _ = browsertest.Eval[string](ctx, `location.pathname + ""`)
	}
	if where != "/room/r-1" {
		t.Fatalf("the voice entry did not go to the room: at %q", where)
	}
	uses, calls := fake.snapshot()
	if strings.Join(uses, ",") != "qh-chat,qh-voice" {
		t.Errorf("uses counted: %v", uses)
	}
	if len(calls) != 1 || calls[0]["kind"] != "voice" || calls[0]["entry_id"] != "qh-voice" {
		t.Errorf("calls: %v", calls)
	}
}

// TestDemoRoutesOnlyInDemo: without the simulator (serve), the page's demo
// helpers do not exist.
func TestDemoRoutesOnlyInDemo(t *testing.T) {
	e := newRentalEnv(t, storetest.Targets()[0], false)
	for _, r := range []string{"GET /api/v1/demo/simulator", "POST /api/v1/demo/wx-login", "POST /api/v1/demo/orders/:id/pay"} {
		if _, ok := e.srv.roles[r]; ok {
			t.Errorf("%s is mounted outside the demo", r)
		}
	}
	if st := e.api(t, "GET", "/api/v1/demo/simulator", "", nil, nil); st != 404 {
		t.Errorf("GET /api/v1/demo/simulator outside the demo: %d", st)
	}
}

// TestCustomerPageInMiniProgram is the page inside the mini-program's
// web-view: the shell opens it with ?code= from wx.login; paying hands the
// wx.requestPayment parameters to the shell (wx.miniProgram), which pays;
// "我已支付" asks WeChat Pay and shows 已支付.
func TestCustomerPageInMiniProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	e := newRentalEnv(t, storetest.Targets()[0], true)
	rod := e.stock(t, "路亚竿 2.1m", rental.CategoryRod, 2000, 30000, 1, "路亚")
	ctx := browsertest.New(t, browsertest.Options{})

	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/?code="+e.sim.Login("o-in-mp")+"#/orders"), chromedp.WaitVisible("#orders .empty")); err != nil {
		t.Fatal(err)
	}
	if search, _ := browsertest.Eval[string](ctx, `location.search`); search != "" {
		t.Errorf("the used wx.login code stays in the address: %q", search)
	}
	token, err := browsertest.Eval[string](ctx, `JSON.parse(sessionStorage.getItem("tg.customer")).access_token`)
	if err != nil || token == "" {
		t.Fatalf("not logged in with the code: %v", err)
	}
	o := e.placeOrder(t, token, rod, 1, 1)

	// The shell's bridge, as jweixin provides it inside the web-view.
	if _, err := browsertest.Eval[bool](ctx, `window.__wxjs_environment = "miniprogram"; window.sent = [];
		window.wx = {miniProgram: {postMessage(m) { sent.push(["post", m]); }, navigateTo(o) { sent.push(["nav", o.url]); }}}; true`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/#/order/"+fmt.Sprint(o.ID)), chromedp.WaitVisible("#pay")); err != nil {
		t.Fatal(err)
	}
	// The navigation above kept the document (only the hash changed), so
	// the bridge is still there.
	if err := chromedp.Do(ctx, chromedp.Click("#pay"), chromedp.WaitVisible("#pay-check")); err != nil {
		t.Fatal(err)
	}
	sent, err := browsertest.Eval[string](ctx, `JSON.stringify(window.sent)`)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]json.RawMessage
	if err := json.Unmarshal([]byte(sent), &msgs); err != nil || len(msgs) != 2 {
		t.Fatalf("handed to the shell: %s", sent)
	}
	var post struct {
		Data struct {
			Type    string                  `json:"type"`
			OrderID int64                   `json:"order_id"`
			Params  wechatpay.PaymentParams `json:"params"`
		} `json:"data"`
	}
	var nav string
	json.Unmarshal(msgs[0][1], &post) //nolint:errcheck
	json.Unmarshal(msgs[1][1], &nav)  //nolint:errcheck
	if post.Data.Type != "requestPayment" || post.Data.OrderID != int64(o.ID) || !strings.HasPrefix(post.Data.Params.Package, "prepay_id=") ||
		post.Data.Params.PaySign == "" || !strings.HasPrefix(nav, fmt.Sprintf("/pages/pay/pay?order_id=%d&params=", o.ID)) {
		t.Fatalf("shell got %s", sent)
	}

	// The shell calls wx.requestPayment; the customer pays.
	pending := e.order(t, token, o.ID)
	e.customerPays(t, orderAnswer{Payment: paymentView{OutTradeNo: pending.Payments[0].OutTradeNo}, RequestPayment: post.Data.Params})
	if err := chromedp.Do(ctx, chromedp.Click("#pay-check")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(document.querySelector("#order-state")||{}).textContent === "已支付"`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		body, _ := browsertest.Eval[string](ctx, `document.body.innerText`)
		t.Fatalf("已支付 not shown: %v\npage:\n%s", err, body)
	}
}

// TestCustomerPageLinksMemberAndWaivesDeposit: a WeChat customer proves
// the phone of an imported gold member on the 我的 screen and lands in
// that account; the quote then shows the deposit waived.
func TestCustomerPageLinksMemberAndWaivesDeposit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	e := newRentalEnv(t, storetest.Targets()[0], false)
	c := context.Background()
	if _, err := e.db.ImportMembers(c, []store.MemberImport{{Line: 2, MemberNo: "YJ0009", Name: "赵敏", Phone: "8613800138099", Tier: "gold", Points: 800,
		JoinedAt: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}}, nil); err != nil {
		t.Fatal(err)
	}
	if st := e.api(t, "PUT", "/api/v1/owner/settings", e.owner, map[string]any{"deposit_waived": []string{"gold"}}, nil); st != 200 {
		t.Fatalf("settings: %d", st)
	}
	rod := e.stock(t, "台钓竿 3.6m", rental.CategoryRod, 1500, 20000, 2, "鲫鱼")
	ctx := browsertest.New(t, browsertest.Options{})

	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/?code="+e.sim.Login("o-zhaomin")+"#/me"), chromedp.WaitVisible("#me-phone"),
		chromedp.SendKeys("#me-phone", "13800138099")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#me-send")); err != nil {
		t.Fatal(err)
	}
	var code string
	for deadline := time.Now().Add(10 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if text, ok := e.sms.Last("8613800138099"); ok {
			code = strings.TrimSpace(strings.Split(strings.SplitAfter(text, "验证码是")[1], "，")[0])
		}
	}
	if len(code) != 6 {
		t.Fatal("no SMS code")
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys("#me-code", code)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#me-verify")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#view-me").textContent.includes("金卡会员") && document.querySelector("#view-me").textContent.includes("YJ0009")`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		body, _ := browsertest.Eval[string](ctx, `document.body.innerText`)
		t.Fatalf("not linked to the gold member: %v\n%s", err, body)
	}
	if who, _ := browsertest.Eval[string](ctx, `document.querySelector("#who").textContent`); who != "赵敏 · 金卡会员" {
		t.Errorf("header shows %q", who)
	}

	// The quote: rent only, the deposit waived for gold members.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/#/item/"+fmt.Sprint(rod)), chromedp.WaitVisible("#quote-kv")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#quote-kv").textContent.includes("会员免押") && document.querySelector("#quote-total").textContent === "¥15.00"`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		q, _ := browsertest.Eval[string](ctx, `document.querySelector("#quote").textContent`)
		t.Fatalf("quote for a gold member: %v\n%s", err, q)
	}
}
