package gateway

import (
	"fmt"
	"testing"
)

func quickTitles(out map[string]any) []string {
	var s []string
	for _, e := range out["entries"].([]any) {
		s = append(s, e.(map[string]any)["title"].(string))
	}
	return s
}

func TestQuickHelp(t *testing.T) {
	e := newFeatEnv(t)
	e.srv.MountQuickHelp(&QuickHelp{DB: e.db, Features: e.f})

	// The seeded defaults, in order, for anyone.
	st, out := e.call(t, "GET", "/api/v1/quickhelp", "", nil)
	if st != 200 || fmt.Sprint(quickTitles(out)) != "[教我装鱼线 视频验货 其他问题]" {
		t.Fatalf("defaults: %d %v", st, out)
	}
	first := out["entries"].([]any)[1].(map[string]any)
	if first["action"] != "video" || first["purpose"] != "inspection" || first["icon"] == "" {
		t.Errorf("视频验货: %v", first)
	}
	for _, r := range []string{"GET /api/v1/owner/quickhelp", "POST /api/v1/owner/quickhelp", "PUT /api/v1/owner/quickhelp/:id", "DELETE /api/v1/owner/quickhelp/:id", "POST /api/v1/owner/quickhelp/order"} {
		if roles := e.srv.roles[r]; len(roles) != 1 || roles[0] != ownerOnly[0] {
			t.Errorf("%s roles %v", r, roles)
		}
	}
	if roles := e.srv.roles["POST /api/v1/quickhelp/:id/use"]; len(roles) != 1 || roles[0] != customers[0] {
		t.Errorf("use roles %v", roles)
	}

	// Flags: video help off → the video entries are left out; quick help
	// off → nothing.
	cust := e.customerLogin(t, "o-qh")
	e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 0})
	if _, out = e.call(t, "GET", "/api/v1/quickhelp", cust, nil); fmt.Sprint(quickTitles(out)) != "[其他问题]" {
		t.Errorf("video help off: %v", quickTitles(out))
	}
	if st, _ := e.call(t, "POST", "/api/v1/quickhelp/1/use", cust, nil); st != 404 {
		t.Errorf("a hidden entry's use counted: %d", st)
	}
	e.call(t, "PUT", "/api/v1/owner/features/in_app_chat", e.owner, map[string]any{"enabled": false})
	if _, out = e.call(t, "GET", "/api/v1/quickhelp", cust, nil); len(quickTitles(out)) != 0 {
		t.Errorf("video and chat off: %v", quickTitles(out))
	}
	e.call(t, "PUT", "/api/v1/owner/features/video_help", e.owner, map[string]any{"percent": 100})
	e.call(t, "PUT", "/api/v1/owner/features/in_app_chat", e.owner, map[string]any{"enabled": true})
	e.call(t, "PUT", "/api/v1/owner/features/quick_help", e.owner, map[string]any{"enabled": false})
	if _, out = e.call(t, "GET", "/api/v1/quickhelp", cust, nil); len(quickTitles(out)) != 0 {
		t.Errorf("quick help off: %v", quickTitles(out))
	}
	e.call(t, "PUT", "/api/v1/owner/features/quick_help", e.owner, map[string]any{"enabled": true})

	// Owner: add, with an emoji and with a built-in icon; bad input refused.
	st, out = e.call(t, "POST", "/api/v1/owner/quickhelp", e.owner, map[string]any{"title": "语音问路", "icon": "voice", "action": "voice", "purpose": "guidance"})
	if st != 201 {
		t.Fatalf("create: %d %v", st, out)
	}
	voiceID := dig(out, "entry", "id").(float64)
	for _, bad := range []map[string]any{
		{"title": "", "action": "chat"},
		{"title": "太长的标题太长的标题太长的标题太长的标题太长", "action": "chat"},
		{"title": "x", "action": "fax"},
		{"title": "x", "action": "chat", "icon": "not an icon"},
		{"title": "x", "action": "article", "article_slug": "no-such-entry"},
		{"title": "x", "action": "video", "purpose": "party"},
	} {
		if st, out := e.call(t, "POST", "/api/v1/owner/quickhelp", e.owner, bad); st != 400 {
			t.Errorf("%v: %d %v", bad, st, out)
		}
	}
	// Reorder: the new one first; a partial list is refused.
	_, out = e.call(t, "GET", "/api/v1/owner/quickhelp", e.owner, nil)
	var ids []int64
	for _, x := range out["entries"].([]any) {
		ids = append(ids, int64(x.(map[string]any)["id"].(float64)))
	}
	if len(ids) != 4 {
		t.Fatalf("owner list %v", out)
	}
	if st, _ := e.call(t, "POST", "/api/v1/owner/quickhelp/order", e.owner, map[string]any{"ids": ids[:2]}); st != 400 {
		t.Errorf("partial order: %d", st)
	}
	order := []int64{ids[3], ids[0], ids[1], ids[2]}
	if st, out := e.call(t, "POST", "/api/v1/owner/quickhelp/order", e.owner, map[string]any{"ids": order}); st != 200 {
		t.Fatalf("order: %d %v", st, out)
	}
	if _, out = e.call(t, "GET", "/api/v1/quickhelp", "", nil); fmt.Sprint(quickTitles(out)) != "[语音问路 教我装鱼线 视频验货 其他问题]" {
		t.Errorf("after reorder: %v", quickTitles(out))
	}
	// Edit: switched off, it leaves the customer list.
	path := fmt.Sprintf("/api/v1/owner/quickhelp/%d", int64(voiceID))
	if st, out := e.call(t, "PUT", path, e.owner, map[string]any{"title": "语音问路", "icon": "📞", "action": "voice", "enabled": false}); st != 200 || dig(out, "entry", "icon") != "📞" {
		t.Fatalf("update: %d %v", st, out)
	}
	if _, out = e.call(t, "GET", "/api/v1/quickhelp", "", nil); len(quickTitles(out)) != 3 {
		t.Errorf("disabled entry still listed: %v", quickTitles(out))
	}

	// Uses are counted for enabled entries only.
	use := fmt.Sprintf("/api/v1/quickhelp/%d/use", ids[0])
	for i := 0; i < 3; i++ {
		if st, _ := e.call(t, "POST", use, cust, nil); st != 204 {
			t.Fatalf("use: %d", st)
		}
	}
	if st, _ := e.call(t, "POST", fmt.Sprintf("/api/v1/quickhelp/%d/use", int64(voiceID)), cust, nil); st != 404 {
		t.Errorf("use of a disabled entry: %d", st)
	}
	_, out = e.call(t, "GET", "/api/v1/owner/quickhelp", e.owner, nil)
	for _, x := range out["entries"].([]any) {
		m := x.(map[string]any)
		want := 0.0
		if int64(m["id"].(float64)) == ids[0] {
			want = 3
		}
		if m["uses"] != want || m["recent_uses"] != want {
			t.Errorf("uses of %v: %v / %v, want %v", m["title"], m["uses"], m["recent_uses"], want)
		}
	}
	// Delete.
	if st, _ := e.call(t, "DELETE", path, e.owner, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st, _ := e.call(t, "DELETE", path, e.owner, nil); st != 404 {
		t.Errorf("delete twice: %d", st)
	}
}
