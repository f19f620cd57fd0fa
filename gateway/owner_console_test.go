package gateway

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/gateway/browsertest"
)

// TestOwnerConsoleInBrowser logs in as the owner in headless Chromium, reads
// the KPI dashboard and checks its figures against the API, checks that the
// SVG charts are drawn, rolls video help to 10% with the slider (audited),
// and keeps a screenshot.
func TestOwnerConsoleInBrowser(t *testing.T) {
	if browsertest.Path() == "" && os.Getenv("CI") == "" {
		t.Skip("chromium not installed")
	}
	e := newFeatEnv(t)
	e.srv.MountQuickHelp(&QuickHelp{DB: e.db, Features: e.f})
	e.srv.MountKPIs(&KPIs{DB: e.db})
	if _, err := SeedKnowledge(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
	kb, err := assistant.New(nil, assistant.Options{Facts: e.db})
	if err != nil {
		t.Fatal(err)
	}
	if err := LoadKnowledge(context.Background(), e.db, kb); err != nil {
		t.Fatal(err)
	}
	e.srv.MountKnowledge(&Knowledge{DB: e.db, Assistant: kb})
	now := time.Now().UTC()
	// Four calls (two answered, 90 s and 150 s), two missed; a rated chat.
	for i, ans := range []bool{true, false, true, false} {
		var answered, ended any
		state := "missed"
		if ans {
			answered, ended, state = now.Add(-2*time.Hour), now.Add(-2*time.Hour+time.Duration(90+30*i)*time.Second), "ended"
		}
		if err := e.db.Gorm.Exec(`INSERT INTO calls (room_id, kind, source, state, started_at, answered_at, ended_at, rating) VALUES (?, 'video', 'quick_help', ?, ?, ?, ?, ?)`,
			fmt.Sprintf("b%d", i), state, now.Add(-2*time.Hour), answered, ended, 5-i).Error; err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx) //nolint:errcheck // best effort at the end of the test
	})
	base := "http://" + ln.Addr().String()
	ctx := browsertest.New(t, browsertest.Options{})

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/owner"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#password", "fishing-shop-2026"),
		chromedp.Click("#login-btn"),
		chromedp.WaitVisible("#kpi-connect"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The figures on the page are the API's.
	_, api := e.call(t, "GET", "/api/v1/owner/kpis", e.owner, nil)
	for id, want := range map[string]string{
		"kpi-started":      fmt.Sprint(dig(api, "calls", "started")),
		"kpi-answered":     fmt.Sprint(dig(api, "calls", "answered")),
		"kpi-connect":      fmt.Sprintf("%.1f%%", dig(api, "calls", "connect_rate").(float64)*100),
		"kpi-rating-all":   fmt.Sprintf("%.2f", dig(api, "satisfaction", "all", "average").(float64)),
		"kpi-orders-all":   fmt.Sprint(dig(api, "rental", "all", "orders")),
		"kpi-revenue-with": "¥0.00",
	} {
		got, err := browsertest.Eval[string](ctx, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("#%s shows %q, the API says %q", id, got, want)
		}
	}
	if dig(api, "calls", "started") != float64(4) || dig(api, "calls", "connect_rate") != 0.5 {
		t.Fatalf("seeded calls not in the API: %v", api["calls"])
	}
	// The charts are drawn: the donut's arc, 24 hour slots with two missed
	// calls in one bar, the rating distributions (all and calls: four
	// ratings each) and the messages per day.
	charts, err := browsertest.Eval[map[string]float64](ctx, `({
		charts: document.querySelectorAll("svg.chart").length,
		arc: parseFloat(document.querySelector("#card-calls svg.donut .arc").getAttribute("stroke-dasharray")),
		missedBars: document.querySelectorAll("#card-calls svg.chart:not(.donut) rect.bar").length,
		ratingBars: document.querySelectorAll("#card-ratings svg.dist rect.bar").length,
	})`)
	if err != nil {
		t.Fatal(err)
	}
	// Arc: half of the circumference 2π·42 ≈ 263.9.
	if charts["charts"] < 5 || charts["arc"] < 131 || charts["arc"] > 133 || charts["missedBars"] != 1 || charts["ratingBars"] != 8 {
		t.Errorf("charts %v", charts)
	}

	// Roll video help out to 10% with the slider.
	err = chromedp.Do(ctx,
		chromedp.Click(`#tabs button[data-tab="flags"]`),
		chromedp.WaitVisible("#pct-video_help"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](ctx, `(() => { const s = document.getElementById("pct-video_help"); s.value = "10";
		s.dispatchEvent(new Event("input", {bubbles: true})); document.getElementById("reason-video_help").value = "先放一成"; return true; })()`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#save-video_help")); err != nil {
		t.Fatal(err)
	}
	var percent any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if percent = e.f.Flags()[3].Percent; percent == 10 {
			break
		}
	}
	if percent != 10 {
		t.Fatalf("video_help at %v%% after saving 10%%", percent)
	}
	_, audit := e.call(t, "GET", "/api/v1/owner/features/audit?flag=video_help&limit=1", e.owner, nil)
	line, _ := audit["entries"].([]any)
	if len(line) != 1 || dig(line[0].(map[string]any), "after", "percent") != float64(10) || dig(line[0].(map[string]any), "before", "percent") != float64(100) ||
		line[0].(map[string]any)["reason"] != "先放一成" || line[0].(map[string]any)["actor"] != "owner:owner" {
		t.Fatalf("audit %v", audit)
	}
	// The page shows the change in its audit list.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`#pctv-video_help`)); err != nil {
		t.Fatal(err)
	}
	// The page reloads its audit list after the save answers: wait for it.
	var shown string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		shown, err = browsertest.Eval[string](ctx, `document.getElementById("audit").textContent`)
		if (err == nil && bytes.Contains([]byte(shown), []byte("100% → 10%"))) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !bytes.Contains([]byte(shown), []byte("100% → 10%")) {
		t.Errorf("audit on the page: %q %v", shown, err)
	}

	// The guard rails, run from the page, show what they saw per flag.
	if err := chromedp.Do(ctx, chromedp.Click("#guard-run"), chromedp.WaitVisible("#guard-table")); err != nil {
		t.Fatal(err)
	}
	rows, err := browsertest.Eval[int](ctx, `document.querySelectorAll("#guard-table tr").length`)
	if err != nil || rows != 5 {
		t.Errorf("guard table: %d rows (%v), want a header and 4 flags", rows, err)
	}

	// Quick help: move the last entry up one place.
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs button[data-tab="quick"]`), chromedp.WaitVisible(`#quick-list .qh`)); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](ctx, `(() => { const b = document.querySelectorAll("#quick-list .qh")[2].querySelector("[aria-label='上移']"); b.click(); return true; })()`); err != nil {
		t.Fatal(err)
	}
	var order string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, out := e.call(t, "GET", "/api/v1/owner/quickhelp", e.owner, nil) // all of them: video help is at 10% now
		if order = fmt.Sprint(quickTitles(out)); order == "[教我装鱼线 其他问题 视频验货]" {
			break
		}
	}
	if order != "[教我装鱼线 其他问题 视频验货]" {
		t.Errorf("after moving 其他问题 up: %s", order)
	}

	// Knowledge base: the seeded entries are listed and searchable, and the
	// ask box answers from them.
	err = chromedp.Do(ctx,
		chromedp.Click(`#tabs button[data-tab="kb"]`),
		chromedp.WaitVisible(`#kb-list .kb-entry`),
		chromedp.SendKeys("#kb-search", "押金"),
		chromedp.SendKeys("#ask-q", "押金怎么退"),
		chromedp.Click("#ask-btn"),
		chromedp.WaitVisible("#ask-answer"),
	)
	if err != nil {
		t.Fatal(err)
	}
	kbState, err := browsertest.Eval[map[string]string](ctx, `({count: document.getElementById("kb-count").textContent,
		answer: document.getElementById("ask-answer").textContent})`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kbState["count"], "匹配") || !strings.Contains(kbState["answer"], "退") {
		t.Errorf("knowledge base tab: %v", kbState)
	}

	// Markdown export and import: what the page writes it reads back the
	// same, and the import route takes it (every entry unchanged).
	md, err := browsertest.Eval[map[string]any](ctx, `(async () => {
		const kb = ownerConsole.kb();
		const back = ownerConsole.fromMarkdown(ownerConsole.toMarkdown(kb));
		const same = back.length === kb.length && back.every((e, i) => e.id === kb[i].id && e.title === kb[i].title && e.kind === kb[i].kind &&
			e.answer === kb[i].answer.trim() && e.enabled === kb[i].enabled &&
			JSON.stringify(e.questions) === JSON.stringify(kb[i].questions) && JSON.stringify(e.tags) === JSON.stringify(kb[i].tags));
		const rep = await tg.api("owner", "POST", "/owner/kb/import", { version: 1, entries: back });
		return { n: kb.length, same, unchanged: rep.unchanged, created: rep.created, updated: rep.updated };
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if md["same"] != true || md["n"].(float64) < 10 || md["unchanged"] != md["n"] || md["created"] != float64(0) || md["updated"] != float64(0) {
		t.Errorf("Markdown round trip: %v", md)
	}

	// A screenshot of the dashboard, kept as the test's artifact.
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs button[data-tab="kpi"]`), chromedp.WaitVisible("#kpi-connect")); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (anything less is JPEG)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "owner-dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); len(shot) < 20_000 || b.Dx() < 300 || b.Dy() < 1000 {
		t.Errorf("screenshot %dx%d, %d bytes: too small for the dashboard", b.Dx(), b.Dy(), len(shot))
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
