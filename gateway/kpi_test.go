package gateway

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

func TestKPIRoutes(t *testing.T) {
	e := newFeatEnv(t)
	k := &KPIs{DB: e.db}
	e.srv.MountKPIs(k)
	now := time.Now().UTC()
	for i, ans := range []bool{true, false, false, true} {
		var answered, ended any
		state := "missed"
		if ans {
			answered, ended, state = now.Add(-time.Hour), now.Add(-time.Hour+time.Duration(60*(i+1))*time.Second), "ended"
		}
		if err := e.db.Gorm.Exec(`INSERT INTO calls (room_id, kind, source, state, started_at, answered_at, ended_at) VALUES (?, 'video', 'console', ?, ?, ?, ?)`,
			"k"+string(rune('a'+i)), state, now.Add(-time.Hour), answered, ended).Error; err != nil {
			t.Fatal(err)
		}
	}
	if roles := e.srv.roles["GET /api/v1/owner/kpis.csv"]; len(roles) != 1 || roles[0] != rental.RoleOwner {
		t.Errorf("csv roles %v", roles)
	}
	if st, _ := e.call(t, "GET", "/api/v1/owner/kpis", e.customerLogin(t, "o-kpi"), nil); st != 403 {
		t.Errorf("customer: %d", st)
	}
	st, out := e.call(t, "GET", "/api/v1/owner/kpis", e.owner, nil)
	if st != 200 || dig(out, "calls", "started") != float64(4) || dig(out, "calls", "connect_rate") != 0.5 ||
		dig(out, "calls", "avg_duration_seconds") != float64(150) || dig(out, "period", "to") != rental.DateOf(now).AddDays(1).String() {
		t.Fatalf("kpis: %d %v", st, out)
	}
	// A period with nothing in it.
	if st, out = e.call(t, "GET", "/api/v1/owner/kpis?from=2020-01-01&to=2020-01-08", e.owner, nil); st != 200 || dig(out, "calls", "started") != float64(0) {
		t.Errorf("empty period: %d %v", st, out)
	}
	for _, q := range []string{"from=2026-13-01", "from=2026-11-08&to=2026-11-01", "from=2020-01-01&to=2026-01-01"} {
		if st, _ := e.call(t, "GET", "/api/v1/owner/kpis?"+q, e.owner, nil); st != 400 {
			t.Errorf("%s: %d", q, st)
		}
	}

	// CSV: a BOM, then rows Excel reads.
	req := httptest.NewRequest("GET", "/api/v1/owner/kpis.csv", nil)
	req.Header.Set("Authorization", "Bearer "+e.owner)
	resp, body := do(t, e.srv, req)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %q %v", resp.StatusCode, body[:min(len(body), 20)], resp.Header)
	}
	rows, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, r := range rows {
		if len(r) != 4 {
			t.Fatalf("row %v", r)
		}
		found[r[0]+"/"+r[1]] = r[2]
	}
	if found["视频/语音/接通率"] != "50.0%" || found["视频/语音/未接"] != "2" || found["租赁（全部）/收入"] != "0.00" || found["快捷求助使用/教我装鱼线"] != "0" {
		t.Errorf("csv figures: %v", found)
	}

	// Gauges on the gateway's registry.
	if err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, e.srv, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"tacklegate_kpi_call_connect_ratio 0.5", `tacklegate_kpi_calls{outcome="missed"} 2`, `tacklegate_kpi_call_duration_seconds{stat="p90"} 240`,
		`tacklegate_kpi_quickhelp_uses{entry="1",title="教我装鱼线"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
