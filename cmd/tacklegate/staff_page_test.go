package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/gateway/browsertest"
)

// TestStaffConsoleSignsInThroughSimulatedWeCom is a staff member opening the
// demo's console in a desktop browser: 用企业微信账号登录 goes through WeCom's
// web OAuth — here the simulator's page, which asks who holds the phone —
// and comes back to /staff with a code that signs 老王 in.
func TestStaffConsoleSignsInThroughSimulatedWeCom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "demo.db")}, "demo")
	ctx := browsertest.New(t, browsertest.Options{Timeout: 90 * time.Second})
	waitFor := func(what, cond string) { t.Helper(); pageWait(t, ctx, what, cond) }
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/staff")); err != nil {
		t.Fatal(err)
	}
	waitFor("the sign-in button", `!document.querySelector("#login").classList.contains("hidden")`)
	if err := chromedp.Do(ctx, chromedp.Click("#login-oauth")); err != nil {
		t.Fatal(err)
	}
	waitFor("the simulator's WeCom authorisation page", `location.pathname.endsWith("/connect/oauth2/authorize") && !!document.querySelector('a[data-userid="laowang"]')`)
	if err := chromedp.Do(ctx, chromedp.Click(`a[data-userid="laowang"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the console signed in", `location.pathname === "/staff" && !document.querySelector("#app").classList.contains("hidden") && document.querySelector("#me").textContent !== ""`)
	me, err := browsertest.Eval[string](ctx, `document.querySelector("#me").textContent`)
	if err != nil || !strings.Contains(me, "老王") {
		t.Errorf("signed in as %q (%v), want 老王", me, err)
	}
	// The one-time code is gone from the address bar.
	if href, _ := browsertest.Eval[string](ctx, `location.href`); strings.Contains(href, "code=") {
		t.Errorf("the code stayed in the address: %s", href)
	}
}

// pageWait polls a JavaScript condition in the browser until it holds,
// evaluating it afresh each time (a navigation in between ends any one
// poll); on timeout it fails with the page's address and text.
func pageWait(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, err = browsertest.Eval[bool](ctx, cond); err == nil && ok {
			return
		}
	}
	body, _ := browsertest.Eval[string](ctx, `location.href + "\n" + document.body.innerText`)
	t.Fatalf("waiting for %s (last error %v)\npage:\n%s", what, err, body)
}
