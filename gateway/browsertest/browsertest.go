// Package browsertest starts Debian's headless Chromium for the H5 page tests
// and drives it with chromedp (the Chrome DevTools Protocol from Go, so the
// browser tests are ordinary `go test` tests with no Node.js toolchain).
//
// Without /usr/bin/chromium a test skips, unless CI is set: there .ci/run
// installs it, and a missing browser must fail rather than hide the tests.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds Chromium: $TACKLEGATE_CHROMIUM, else chromium on PATH.
func Path() string {
	if p := os.Getenv("TACKLEGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Options tune one browser.
type Options struct {
	// FakeMedia gives getUserMedia a synthetic camera and microphone without
	// a permission prompt (the video room tests).
	FakeMedia bool
	// Timeout bounds the whole browser session; default 90 s.
	Timeout time.Duration
	// Width and Height of the window; default a phone, 390×844.
	Width, Height int
}

// New starts a headless Chromium and returns a context for chromedp.Run on
// its first tab. Everything is torn down when the test ends. Call it once per
// browser; two calls give two independent browsers (two people in a call).
//
// Start the server under test before calling New and stop it in a
// t.Cleanup, not a defer: cleanups run last-in first-out, so the browser (and
// its keep-alive connections) is gone before the server's graceful shutdown
// waits for idle connections. Run steps with chromedp.Do / chromedp.Run
// (chromedp v0.23's generic Action API) or Eval below.
func New(t testing.TB, o Options) context.Context {
	t.Helper()
	exe := Path()
	if exe == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; .ci/run installs it (apt-get install -y chromium fonts-wqy-microhei)")
		}
		t.Skip("chromium not installed (apt-get install -y chromium fonts-wqy-microhei); CI runs this test")
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Width == 0 {
		o.Width, o.Height = 390, 844
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// This machine has no network beyond loopback: a browser that tries
		// to phone home gets refused connections by the dozen.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("lang", "zh-CN"),
	}
	if o.FakeMedia {
		opts = append(opts,
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
			chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
			// Real host addresses instead of .local names, which cannot
			// resolve here.
			chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tctx, cancelTimeout := context.WithTimeout(actx, o.Timeout)
	ctx, cancelTab := chromedp.NewContext(tctx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelTimeout(); cancelAlloc() })
	// Start the browser now, so a failure to launch is reported here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return ctx
}

// Eval runs a JavaScript expression in the tab and returns its value decoded
// into T; a Promise is awaited.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}
