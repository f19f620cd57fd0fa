package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/gateway/browsertest"
	"github.com/tacklegate/tacklegate/rental"
)

// chatTestPage mounts a test-only page that loads tg.js and the customer
// page's chat.js from the embedded files, the way the customer page will,
// and mounts the chat with the token in the URL fragment.
func chatTestPage(e *bridgeEnv) {
	page := `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><link rel="stylesheet" href="/assets/tg.css">` +
		`</head><body><div id="c" style="height:600px"></div><script src="/assets/tg.js"></script>` +
		`<script src="/tgchat-test/chat.js"></script><script src="/tgchat-test/boot.js"></script></body></html>`
	boot := `(function(){ const t = decodeURIComponent(location.hash.slice(1)); tg.saveSession("customer", {access_token: t, refresh_token: ""});
		window.chat = TGChat.mount(document.getElementById("c"), {sessionKey: "customer", presetText: "我想租一根海竿"}); })();`
	app := e.srv.App()
	app.Get("/tgchat-test", func(c *fiber.Ctx) error { pageHeaders(c); c.Type("html", "utf-8"); return c.SendString(page) })
	app.Get("/tgchat-test/boot.js", func(c *fiber.Ctx) error { pageHeaders(c); c.Type("js"); return c.SendString(boot) })
	app.Get("/tgchat-test/chat.js", func(c *fiber.Ctx) error {
		b, err := webFiles.ReadFile("web/customer/chat.js")
		if err != nil {
			return err
		}
		pageHeaders(c)
		c.Type("js")
		return c.Send(b)
	})
}

// TestCustomerChatInBrowser: chat.js in headless Chromium (with a fake
// microphone): the presence line, the preset text sent, the staff reply
// shown live, a photo and a voice note recorded with MediaRecorder reach
// staff, and after the staff member closes, the customer rates with the
// stars.
func TestCustomerChatInBrowser(t *testing.T) {
	e := newChatEnv(t, []string{"laowang:老王"}, alwaysOpen(), nil, chatTestPage)
	e.presence.Heartbeat("laowang")
	const openID = "o-chatjs"
	e.named(openID, "吴昊")
	tok := e.customerToken(openID)
	ctx := browsertest.New(t, browsertest.Options{FakeMedia: true})
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/tgchat-test#"+tok), chromedp.WaitVisible(".tgchat-input textarea")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the presence line", `document.querySelector(".tgchat-presence").textContent.includes("客服在线 · 客服在线，通常 2 分钟内回复")`)
	if v, _ := browsertest.Eval[string](ctx, `document.querySelector(".tgchat-input textarea").value`); v != "我想租一根海竿" {
		t.Errorf("preset text: %q", v)
	}
	if err := chromedp.Do(ctx, chromedp.Click(".tgchat-input button[type=submit]")); err != nil {
		t.Fatal(err)
	}
	e.waitInbox("laowang", "我想租一根海竿")
	waitJS(t, ctx, "the message delivered to staff", `document.querySelector(".tgchat-list li.me .tgchat-meta").textContent.includes("已送达客服")`)

	e.staff("laowang", "有的，海竿一天三十元")
	waitJS(t, ctx, "the reply live", `[...document.querySelectorAll(".tgchat-list li.them")].some(li => li.textContent.includes("海竿一天三十元") && li.textContent.includes("店员老王"))`)

	// A photo.
	dir := t.TempDir()
	photo := filepath.Join(dir, "reel.png")
	if err := os.WriteFile(photo, bridgePNG(t, 77), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(`.tgchat-input input[type="file"]`, []string{photo}, chromedp.NodeReady)); err != nil {
		t.Fatal(err)
	}
	e.waitInbox("laowang", "发来一张图片")
	waitJS(t, ctx, "the photo shown", `!!document.querySelector(".tgchat-list li.me img")`)

	// A voice note from the fake microphone.
	if ok, _ := browsertest.Eval[bool](ctx, `typeof MediaRecorder !== "undefined"`); ok {
		if err := chromedp.Do(ctx, chromedp.Click(`.tgchat-input button[aria-label="录语音"]`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "recording", `document.querySelector(".tgchat-recording").textContent.includes("正在录音")`)
		time.Sleep(1600 * time.Millisecond)
		if err := chromedp.Do(ctx, chromedp.Click(`.tgchat-input button[aria-label="录语音"]`)); err != nil {
			t.Fatal(err)
		}
		voice := e.waitInbox("laowang", "请在客服后台收听")
		if !strings.Contains(voice, "发来一段语音（") {
			t.Errorf("voice notice: %q", voice)
		}
		e.settled()
		_, msgs := e.transcript(e.liveConversation(e.memberOf(openID)).ID)
		v := msgs[len(msgs)-1]
		if v.Kind != rental.ChatVoice || v.Duration < time.Second || v.Duration > 5*time.Second || len(v.Media) == 0 {
			t.Errorf("stored voice note: %s %v %d bytes %s", v.Kind, v.Duration, len(v.Media), v.MediaType)
		}
	} else {
		t.Log("no MediaRecorder in this Chromium: voice notes not exercised")
	}

	// Closed: the stars rate it.
	e.staff("laowang", "/close")
	waitJS(t, ctx, "the rating stars", `!!document.querySelector('.tgchat-rate button[data-score="5"]') && !document.querySelector(".tgchat-rate").classList.contains("hidden")`)
	if err := chromedp.Do(ctx, chromedp.Click(`.tgchat-rate button[data-score="5"]`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the thanks", `document.querySelector(".tgchat-rate").textContent.includes("感谢评价")`)
	e.waitInbox("laowang", "顾客评分：5 分")
}
