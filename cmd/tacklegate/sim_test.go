package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSimCommandPointsAGatewayAtIt runs `tacklegate sim`, then `serve` with
// exactly the settings sim printed, and checks that all three channels are
// on and the simulator's URL checks against the gateway pass.
func TestSimCommandPointsAGatewayAtIt(t *testing.T) {
	dir := t.TempDir()
	simAddr, gwAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--addr", simAddr, "--data", filepath.Join(dir, "sim"), "--gateway", "http://" + gwAddr}, envFrom(nil), &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("sim did not stop")
		}
	})
	exports := regexp.MustCompile(`export (TACKLEGATE_\w+)='([^']*)'`)
	deadline := time.Now().Add(20 * time.Second)
	for len(exports.FindAllString(out.String(), -1)) < 18 {
		if time.Now().After(deadline) {
			t.Fatalf("sim printed no settings:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "http://"+simAddr+"/sim") {
		t.Errorf("sim does not print its page:\n%s", out.String())
	}
	if resp, err := http.Get("http://" + simAddr + "/sim"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sim page: %v %v", resp, err)
	}

	vars := map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "gw.db")}
	for _, m := range exports.FindAllStringSubmatch(out.String(), -1) {
		vars[m[1]] = m[2]
	}
	vars["TACKLEGATE_HTTP_ADDR"] = gwAddr
	r := startAt(t, vars, "serve")
	_, _, body := get(t, r.base+"/readyz")
	for _, ch := range []string{`"wechat":"on"`, `"wecom":"on"`, `"wechatpay":"on"`} {
		if !strings.Contains(string(body), ch) {
			t.Errorf("readyz lacks %s: %s", ch, body)
		}
	}
	for _, target := range []string{"wechat", "wecom"} {
		var v struct {
			OK                   bool `json:"ok"`
			BadSignatureRejected bool `json:"bad_signature_rejected"`
		}
		postJSON(t, "http://"+simAddr+"/sim/api/verify/"+target, nil, &v)
		if !v.OK || !v.BadSignatureRejected {
			t.Errorf("URL check %s against the separately started gateway: %+v", target, v)
		}
	}
}
