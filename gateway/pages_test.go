package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAssetsServedWithPageHeaders(t *testing.T) {
	s := New(Options{})
	resp, err := s.App().Test(httptest.NewRequest("GET", "/assets/tg.js", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "window.tg = tg") {
		t.Fatalf("GET /assets/tg.js: %d %.80q", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	resp, err = s.App().Test(httptest.NewRequest("GET", "/assets/nothing.js", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 {
		t.Errorf("missing asset: status %d, want 404", resp.StatusCode)
	}
}
