package gateway

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/gateway/browsertest"
)

// framesDecodedJS sums framesDecoded of the page's inbound video.
const framesDecodedJS = `(async () => {
  const r = window.__tgRoom;
  if (!r || !r.pc) return 0;
  const s = await r.pc.getStats();
  let f = 0;
  s.forEach((x) => { if (x.type === "inbound-rtp" && x.kind === "video") f += x.framesDecoded || 0; });
  return f;
})()`

// framesStillComing checks that a page decodes more video frames over
// the next seconds.
func framesStillComing(t *testing.T, ctx context.Context, who string) {
	t.Helper()
	f0, err := browsertest.Eval[float64](ctx, framesDecodedJS)
	if err != nil {
		t.Fatal(err)
	}
	browserEventually(t, ctx, who+" decoding new frames", framesDecodedJS, 20*time.Second, func(f float64) bool { return f > f0+10 })
}

// roomDebugJS describes the page's call, for failures.
const roomDebugJS = `(async () => {
  const r = window.__tgRoom;
  if (!r || !r.pc) return "no pc; status " + document.getElementById("status").textContent;
  const pc = r.pc;
  const out = {ice: pc.iceConnectionState, conn: pc.connectionState, sig: pc.signalingState, status: document.getElementById("status").textContent,
    participants: Object.keys(r.participants), transceivers: pc.getTransceivers().map((t) => t.mid + ":" + t.direction + "/" + t.currentDirection + ":" + (t.receiver.track && t.receiver.track.kind)),
    stats: []};
  (await pc.getStats()).forEach((x) => { if (x.type === "inbound-rtp" || x.type === "outbound-rtp" || (x.type === "candidate-pair" && x.nominated)) out.stats.push(x.type + " " + (x.kind||"") + " pk=" + (x.packetsReceived||x.packetsSent||"") + " fd=" + (x.framesDecoded||"") + " st=" + (x.state||"")); });
  out.remote = pc.remoteDescription && pc.remoteDescription.sdp.split("\r\n").filter((l) => l.startsWith("m=") || l.startsWith("a=msid") || l.startsWith("a=sendonly") || l.startsWith("a=recvonly") || l.startsWith("a=sendrecv") || l.startsWith("a=inactive")).join(" | ");
  return JSON.stringify(out);
})()`

// browserEventually polls a page until cond holds, failing after d.
func browserEventually[T any](t *testing.T, ctx context.Context, what, js string, d time.Duration, cond func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(d)
	var last T
	var lastErr error
	for time.Now().Before(deadline) {
		v, err := browsertest.Eval[T](ctx, js)
		if err == nil && cond(v) {
			return v
		}
		last, lastErr = v, err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: last %v (%v)", what, last, lastErr)
	return last
}

// TestRoomPageTwoBrowsers: a customer starts a video call and a staff
// member joins it, each in their own headless Chromium with a fake camera,
// through the room page. Each side decodes the other's video (getStats
// inbound-rtp framesDecoded > 0), sees the other's name, and the call goes
// ringing → answered → ended with its times when the customer hangs up.
// The staff member's page signs in with WeCom's OAuth code, as the card's
// link opened in WeCom does.
func TestRoomPageTwoBrowsers(t *testing.T) {
	if browsertest.Path() == "" {
		browsertest.New(t, browsertest.Options{}) // skips, or fails in CI
	}
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, nil)
	e.named("o-zhang", "张伟")
	e.staff("laowang", "/on")
	e.waitInbox("laowang", "已上班")
	cust := e.login("o-zhang")
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "video", "entry_id": "teach-line"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	// The staff member opens the card's link in WeCom, which adds the
	// OAuth code: the page signs in with it and asks for a room token.
	code, err := e.sim.OAuthCode("laowang")
	if err != nil {
		t.Fatal(err)
	}

	// The server stops in a cleanup registered before the browsers'.
	customer := browsertest.New(t, browsertest.Options{FakeMedia: true, Timeout: 3 * time.Minute})
	staff := browsertest.New(t, browsertest.Options{FakeMedia: true, Timeout: 3 * time.Minute})
	if err := chromedp.Do(customer, chromedp.Navigate(e.base+s.RoomURL), chromedp.WaitVisible("#join"), chromedp.Click("#join")); err != nil {
		t.Fatalf("customer page: %v", err)
	}
	browserEventually(t, customer, "the customer waiting in the room", `!!(window.__tgRoom && window.__tgRoom.joined)`, 30*time.Second,
		func(v bool) bool { return v })
	if c := e.call(s.CallID); c.State != store.CallRinging {
		t.Fatalf("alone in the room: %s", c.State)
	}
	if err := chromedp.Do(staff, chromedp.Navigate(e.base+"/room/"+s.RoomID+"?code="+url.QueryEscape(code)), chromedp.WaitVisible("#join"),
		chromedp.Click("#join")); err != nil {
		t.Fatalf("staff page: %v", err)
	}
	c := e.waitState(s.CallID, store.CallAnswered)
	if c.Staff != "laowang" {
		t.Errorf("answered by %q", c.Staff)
	}

	for name, ctx := range map[string]context.Context{"customer": customer, "staff": staff} {
		defer func() {
			if t.Failed() {
				d, err := browsertest.Eval[string](ctx, roomDebugJS)
				t.Logf("%s page: %s %v", name, d, err)
			}
		}()
		browserEventually(t, ctx, name+" decoding the other's video", framesDecodedJS, 90*time.Second, func(f float64) bool { return f > 0 })
	}
	tile := browserEventually(t, staff, "the customer's name on the staff side", `(document.querySelector(".tile .name")||{}).textContent||""`,
		10*time.Second, func(s string) bool { return strings.Contains(s, "张伟") })
	t.Logf("staff sees %q", tile)
	// The staff member's page asked the call for a token, with a name.
	browserEventually(t, customer, "the staff member's name on the customer side", `(document.querySelector(".tile .name")||{}).textContent||""`,
		10*time.Second, func(s string) bool { return strings.Contains(s, "老王") })
	browserEventually(t, customer, "the customer's status to say the call is on", `document.getElementById("status").textContent`, 10*time.Second,
		func(s string) bool { return s == "视频通话中" })
	browserEventually(t, customer, "a network quality reading", `window.__tgRoom.quality`, 15*time.Second,
		func(q string) bool { return q == "good" || q == "fair" || q == "poor" })

	// TACKLEGATE_SCREENSHOT_DIR keeps pictures of both pages, for a look.
	if dir := os.Getenv("TACKLEGATE_SCREENSHOT_DIR"); dir != "" {
		for name, ctx := range map[string]context.Context{"customer": customer, "staff": staff} {
			if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				os.WriteFile(filepath.Join(dir, "room-"+name+".png"), png, 0o644) //nolint:errcheck
			}
		}
	}
	// The network changes under the staff member (an "online" event, as
	// after Wi-Fi → 4G): the page restarts ICE and video keeps coming.
	restarts := e.rooms.Stats().ICERestarts
	if _, err := browsertest.Eval[bool](staff, `window.dispatchEvent(new Event("online")), true`); err != nil {
		t.Fatal(err)
	}
	bridgeEventually(t, "an ICE restart", func() bool { return e.rooms.Stats().ICERestarts > restarts })
	framesStillComing(t, staff, "staff after the ICE restart")

	// The customer's signaling socket drops: the page comes back on a new
	// one, the server resumes the participant (same PeerConnection), the
	// call is not interrupted.
	if _, err := browsertest.Eval[bool](customer, `window.__tgRoom.pc.__before = true`); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](customer, `window.__tgRoom.ws.close(), true`); err != nil {
		t.Fatal(err)
	}
	browserEventually(t, customer, "the customer's socket back", `!!(window.__tgRoom.ws && window.__tgRoom.ws.readyState === 1 && window.__tgRoom.reconnectTries === 0)`,
		15*time.Second, func(v bool) bool { return v })
	framesStillComing(t, customer, "customer after reconnecting")
	if same, err := browsertest.Eval[bool](customer, `window.__tgRoom.pc.__before === true`); err != nil || !same {
		t.Errorf("the page made a new PeerConnection instead of resuming: %v %v", same, err)
	}
	if c := e.call(s.CallID); c.State != store.CallAnswered {
		t.Errorf("after the socket dropped the call is %s", c.State)
	}

	// Muting the microphone shows on the other side.
	if err := chromedp.Do(customer, chromedp.Click("#mic")); err != nil {
		t.Fatal(err)
	}
	browserEventually(t, staff, "the customer's mute on the staff side", `(document.querySelector(".tile .name")||{}).textContent||""`,
		10*time.Second, func(s string) bool { return strings.Contains(s, "已静音") })

	if err := chromedp.Do(customer, chromedp.Click("#hangup")); err != nil {
		t.Fatal(err)
	}
	c = e.waitState(s.CallID, store.CallEnded)
	if c.AnsweredAt == nil || c.EndedAt == nil || !c.AnsweredAt.After(c.StartedAt) || !c.EndedAt.After(*c.AnsweredAt) {
		t.Errorf("call times: started %v answered %v ended %v", c.StartedAt, c.AnsweredAt, c.EndedAt)
	}
	// The customer came by link (no session): they rate with their room
	// token, from the page that shows the end of the call.
	if err := chromedp.Do(customer, chromedp.WaitVisible(`#stars button[data-score="4"]`), chromedp.Click(`#stars button[data-score="4"]`)); err != nil {
		t.Fatalf("rating: %v", err)
	}
	bridgeEventually(t, "the rating", func() bool { return e.call(s.CallID).Rating == 4 })
	browserEventually(t, staff, "the staff page to show the end", `window.__tgRoom.ended && document.getElementById("ended-text").textContent`,
		15*time.Second, func(s string) bool { return strings.Contains(s, "通话已结束") })
}

// audioReceivedJS sums packetsReceived of the page's inbound audio, and
// counts inbound video streams.
const audioReceivedJS = `(async () => {
  const r = window.__tgRoom;
  if (!r || !r.pc) return [0, 0];
  const s = await r.pc.getStats();
  let a = 0, v = 0;
  s.forEach((x) => { if (x.type === "inbound-rtp") { if (x.kind === "audio") a += x.packetsReceived || 0; else v++; } });
  return [a, v];
})()`

// TestRoomPageVoiceCall: a voice call's page opens no camera, and the two
// sides hear each other (inbound audio) with no video at all.
func TestRoomPageVoiceCall(t *testing.T) {
	if browsertest.Path() == "" {
		browsertest.New(t, browsertest.Options{})
	}
	e := newCallsEnv(t, storetest.Target{Name: "sqlite"}, []string{"laowang:老王"}, func(o *CallsOptions) { o.StaffTokenLinks = true })
	e.staff("laowang", "/on")
	e.waitInbox("laowang", "已上班")
	cust := e.login("o-zhang")
	var s startOut
	if st := postAuth(t, e.base+"/api/v1/calls", cust, map[string]any{"kind": "voice"}, &s); st != 200 {
		t.Fatalf("start: %d", st)
	}
	var card *wxsim.TextCard
	bridgeEventually(t, "the card", func() bool {
		cards := e.textcards("laowang")
		if len(cards) > 0 {
			card = cards[0]
		}
		return card != nil
	})
	staffURL := strings.Replace(card.URL, "http://shop.example", e.base, 1)

	customer := browsertest.New(t, browsertest.Options{FakeMedia: true, Timeout: 2 * time.Minute})
	staff := browsertest.New(t, browsertest.Options{FakeMedia: true, Timeout: 2 * time.Minute})
	for name, step := range map[string]struct {
		ctx context.Context
		url string
	}{"customer": {customer, e.base + s.RoomURL}, "staff": {staff, staffURL}} {
		if err := chromedp.Do(step.ctx, chromedp.Navigate(step.url), chromedp.WaitVisible("#join"), chromedp.Click("#join")); err != nil {
			t.Fatalf("%s page: %v", name, err)
		}
		title, err := browsertest.Eval[string](step.ctx, `document.getElementById("prejoin-title").textContent + "|" + window.__tgRoom.local.getVideoTracks().length`)
		if err != nil {
			t.Fatalf("%s page: %v", name, err)
		}
		if title != "语音通话|0" {
			t.Errorf("%s page: %q, want a voice call without camera", name, title)
		}
	}
	e.waitState(s.CallID, store.CallAnswered)
	for name, ctx := range map[string]context.Context{"customer": customer, "staff": staff} {
		got := browserEventually(t, ctx, name+" hearing the other side", audioReceivedJS, 60*time.Second, func(v []float64) bool { return len(v) == 2 && v[0] > 50 })
		if got[1] != 0 {
			t.Errorf("%s receives %v video streams in a voice call", name, got[1])
		}
	}
	if err := chromedp.Do(staff, chromedp.Click("#hangup")); err != nil {
		t.Fatal(err)
	}
	if c := e.waitState(s.CallID, store.CallEnded); c.Kind != "voice" {
		t.Errorf("call: %+v", c)
	}
}
