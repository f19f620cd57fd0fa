package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/gateway/browsertest"
)

// waitJS polls a JavaScript condition in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := browsertest.Eval[bool](ctx, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s): %v", what, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStaffConsoleInBrowser: headless Chromium opens /staff with a WeCom
// OAuth code from the simulator, sees a customer's WeChat message arrive
// live with an unread count, opens it, replies, and the customer gets the
// reply in WeChat; an in-app customer gets the console's reply live.
func TestStaffConsoleInBrowser(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王", "xiaoli:小李"}, alwaysOpen(), nil)
	ctx := browsertest.New(t, browsertest.Options{Width: 1100, Height: 800})
	code, err := e.sim.OAuthCode("laowang")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/staff?code="+code), chromedp.WaitVisible("#app")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the live channel", `document.querySelector("#conn").classList.contains("on")`)
	if got, _ := browsertest.Eval[string](ctx, `document.querySelector("#me").textContent`); got != "老王" {
		t.Errorf("signed in as %q", got)
	}
	// The heartbeat made laowang online for customers.
	bridgeEventually(t, "laowang online", func() bool {
		_, p := e.call("GET", "/api/v1/presence", "", nil)
		return p["status"] == "online"
	})

	const openID = "o-browser"
	e.named(openID, "孙丽")
	e.customer(openID, "竿梢断了怎么办")
	waitJS(t, ctx, "the conversation to appear live", `[...document.querySelectorAll("#convs li")].some(li => li.textContent.includes("竿梢断了怎么办") && li.querySelector(".badge") && li.querySelector(".badge").textContent === "1")`)
	if err := chromedp.Do(ctx, chromedp.Click("#convs li"), chromedp.WaitVisible("#msgs li")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the transcript", `document.querySelector("#msgs").textContent.includes("竿梢断了怎么办")`)
	waitJS(t, ctx, "the unread count to clear", `!document.querySelector("#convs li .badge")`)
	if err := chromedp.Do(ctx, chromedp.SendKeys("#text", "带过来免费换一节"), chromedp.Click("#send")); err != nil {
		t.Fatal(err)
	}
	e.waitCustomer(openID, "带过来免费换一节")
	waitJS(t, ctx, "the reply delivered", `document.querySelector("#msgs").textContent.includes("已送达")`)
	// A second message shows up in the open transcript live.
	e.customer(openID, "好的谢谢")
	waitJS(t, ctx, "a live message in the open conversation", `document.querySelector("#msgs").textContent.includes("好的谢谢")`)

	// An in-app customer: the console's reply reaches them over /ws.
	appTok := e.customerToken("o-app-browser")
	custWS := e.connect(appTok)
	if st, out := e.call("POST", "/api/v1/chat/messages", appTok, map[string]string{"text": "小程序里问一下营业时间"}); st != 201 {
		t.Fatalf("in-app message: %d %v", st, out)
	}
	// Least loaded: it went to xiaoli; laowang sees it under 全部进行中.
	if err := chromedp.Do(ctx, chromedp.Click(`.filters button[data-filter="all"]`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the in-app conversation", `[...document.querySelectorAll("#convs li")].some(li => li.textContent.includes("营业时间"))`)
	if _, err := browsertest.Eval[bool](ctx, `(() => { const li = [...document.querySelectorAll("#convs li")].find(li => li.textContent.includes("营业时间")); li.click(); return true })()`); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the in-app transcript", `document.querySelector("#msgs").textContent.includes("营业时间")`)
	if err := chromedp.Do(ctx, chromedp.SendKeys("#text", "每天六点到八点"), chromedp.Click("#send")); err != nil {
		t.Fatal(err)
	}
	custWS.wait("message", hasMessage("每天六点到八点"))
	if n := bridgeCount(e.customerTexts("o-app-browser"), "每天六点"); n != 0 {
		t.Error("the in-app reply went to WeChat")
	}
	// Close from the console (confirm() answered yes).
	if _, err := browsertest.Eval[bool](ctx, `(() => { window.confirm = () => true; document.querySelector("#act-close").click(); return true })()`); err != nil {
		t.Fatal(err)
	}
	custWS.wait("conversation", func(ev map[string]any) bool { return dig(ev, "conversation", "state") == "resolved" })
	waitJS(t, ctx, "the closed state", `document.querySelector("#conv-meta").textContent.includes("已结束")`)
	if txt, _ := browsertest.Eval[string](ctx, `document.body.innerText`); strings.Contains(txt, "undefined") {
		t.Errorf("the page shows undefined: %s", txt)
	}
}
