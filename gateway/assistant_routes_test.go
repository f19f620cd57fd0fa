package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/gateway/assistant"
)

type kbEnv struct {
	srv   *Server
	db    *store.DB
	a     *assistant.Assistant
	owner string
}

func newKBEnv(t *testing.T) *kbEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := db.UseDataKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := SeedOwner(ctx, db, "owner", "fishing-shop-2026"); err != nil {
		t.Fatal(err)
	}
	a, err := assistant.New(nil, assistant.Options{Facts: db})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := newTestServer(t, Options{Identity: &Identity{DB: db, DataKey: key, OwnerUsername: "owner"}})
	srv.MountKnowledge(&Knowledge{DB: db, Assistant: a})
	e := &kbEnv{srv: srv, db: db, a: a}
	var login struct {
		Tokens Tokens `json:"tokens"`
	}
	if st := e.json(t, "POST", "/api/v1/auth/owner", "", map[string]string{"username": "owner", "password": "fishing-shop-2026"}, &login); st != 200 {
		t.Fatalf("owner login: %d", st)
	}
	e.owner = login.Tokens.AccessToken
	return e
}

func (e *kbEnv) raw(t *testing.T, method, path, tok, ctype string, body []byte) (int, []byte, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, b := do(t, e.srv, req)
	return resp.StatusCode, b, resp.Header.Get("Content-Type")
}

func (e *kbEnv) json(t *testing.T, method, path, tok string, in, out any) int {
	t.Helper()
	var b []byte
	if in != nil {
		b, _ = json.Marshal(in)
	}
	st, body, _ := e.raw(t, method, path, tok, "application/json", b)
	if out != nil && st < 300 && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return st
}

func (e *kbEnv) ask(t *testing.T, q string) (kind, top string) {
	t.Helper()
	var out struct {
		Kind    string             `json:"kind"`
		Sources []assistant.Source `json:"sources"`
	}
	if st := e.json(t, "POST", "/api/v1/owner/kb/ask", e.owner, map[string]string{"question": q}, &out); st != 200 {
		t.Fatalf("ask: %d", st)
	}
	if len(out.Sources) > 0 {
		top = out.Sources[0].ID
	}
	return out.Kind, top
}

func TestKnowledgeRoutes(t *testing.T) {
	e := newKBEnv(t)

	// Everything is the owner's.
	for _, r := range []string{"GET /api/v1/owner/kb", "POST /api/v1/owner/kb/import", "GET /api/v1/owner/assistant/stats", "DELETE /api/v1/owner/kb/:id"} {
		if roles, ok := e.srv.roles[r]; !ok || !slices.Equal(roles, ownerOnly) {
			t.Errorf("%s: roles %v, want owner only", r, roles)
		}
	}
	if st := e.json(t, "GET", "/api/v1/owner/kb", "", nil, nil); st != 401 {
		t.Errorf("no token: %d", st)
	}

	// Seeding the demo, then asking.
	if seeded, err := SeedKnowledge(context.Background(), e.db); err != nil || !seeded {
		t.Fatalf("seed: %v %v", seeded, err)
	}
	if seeded, _ := SeedKnowledge(context.Background(), e.db); seeded {
		t.Fatal("seeded twice")
	}
	if err := LoadKnowledge(context.Background(), e.db, e.a); err != nil {
		t.Fatal(err)
	}
	if kind, top := e.ask(t, "押金咋退"); kind != "kb" || top != "deposit-refund" {
		t.Fatalf("ask after seeding: %s %s", kind, top)
	}

	// Create → answers at once; update; delete.
	var created struct {
		ID        string   `json:"id"`
		Enabled   bool     `json:"enabled"`
		Questions []string `json:"questions"`
		UpdatedAt string   `json:"updated_at"`
	}
	in := map[string]any{"id": "invoice", "title": "能开发票吗", "questions": []string{"发票怎么开"}, "answer": "可以开电子发票，还装备后在订单里申请。"}
	if st := e.json(t, "POST", "/api/v1/owner/kb", e.owner, in, &created); st != 201 || !created.Enabled || created.ID != "invoice" || !strings.Contains(created.UpdatedAt, "+08:00") {
		t.Fatalf("create: %d %+v", st, created)
	}
	if st := e.json(t, "POST", "/api/v1/owner/kb", e.owner, in, nil); st != 409 {
		t.Fatalf("create twice: %d", st)
	}
	if st := e.json(t, "POST", "/api/v1/owner/kb", e.owner, map[string]any{"id": "export", "title": "t", "answer": "a"}, nil); st != 400 {
		t.Fatalf("reserved id: %d", st)
	}
	if st := e.json(t, "POST", "/api/v1/owner/kb", e.owner, map[string]any{"id": "x", "title": "t"}, nil); st != 400 {
		t.Fatalf("no answer: %d", st)
	}
	if kind, top := e.ask(t, "开发票吗"); kind != "kb" || top != "invoice" {
		t.Fatalf("new entry not answering: %s %s", kind, top)
	}
	in["enabled"] = false
	if st := e.json(t, "PUT", "/api/v1/owner/kb/invoice", e.owner, in, &created); st != 200 || created.Enabled {
		t.Fatalf("disable: %d %+v", st, created)
	}
	if kind, _ := e.ask(t, "开发票吗"); kind != "none" {
		t.Fatalf("disabled entry still answers: %s", kind)
	}
	if st := e.json(t, "PUT", "/api/v1/owner/kb/invoice", e.owner, map[string]any{"id": "other", "title": "t", "answer": "a"}, nil); st != 400 {
		t.Fatalf("id change: %d", st)
	}
	if st := e.json(t, "DELETE", "/api/v1/owner/kb/invoice", e.owner, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := e.json(t, "GET", "/api/v1/owner/kb/invoice", e.owner, nil, nil); st != 404 {
		t.Fatalf("get deleted: %d", st)
	}

	// Paging.
	var page struct {
		Entries []struct {
			ID string `json:"id"`
		} `json:"entries"`
		Next string `json:"next_cursor"`
	}
	if st := e.json(t, "GET", "/api/v1/owner/kb?limit=30", e.owner, nil, &page); st != 200 || len(page.Entries) != 30 || page.Next == "" {
		t.Fatalf("page 1: %d %d %q", st, len(page.Entries), page.Next)
	}
	first := page.Entries[0].ID
	if st := e.json(t, "GET", "/api/v1/owner/kb?limit=30&after="+page.Next, e.owner, nil, &page); st != 200 || len(page.Entries) != len(assistant.DemoKnowledge())-30 || page.Next != "" {
		t.Fatalf("page 2: %d %d %q", st, len(page.Entries), page.Next)
	}
	if first >= page.Entries[0].ID {
		t.Errorf("pages out of order: %s then %s", first, page.Entries[0].ID)
	}

	// Export → edit → import (raw body, then multipart) → the change answers.
	st, raw, ctype := e.raw(t, "GET", "/api/v1/owner/kb/export", e.owner, "", nil)
	if st != 200 || !strings.HasPrefix(ctype, "application/yaml") {
		t.Fatalf("export: %d %s", st, ctype)
	}
	entries, err := assistant.ParseKnowledge(bytes.NewReader(raw))
	if err != nil || len(entries) != len(assistant.DemoKnowledge()) {
		t.Fatalf("exported file: %d entries, %v", len(entries), err)
	}
	entries = append(entries, assistant.Entry{ID: "parking", Title: "店门口能停车吗", Questions: []string{"停车方便吗"},
		Answer: "店门口有 4 个免费车位。", Enabled: true})
	file, _ := assistant.MarshalKnowledge(entries)
	var rep store.KBImportReport
	st, body, _ := e.raw(t, "POST", "/api/v1/owner/kb/import", e.owner, "application/yaml", file)
	if st != 200 || json.Unmarshal(body, &rep) != nil || rep != (store.KBImportReport{Created: 1, Unchanged: len(entries) - 1}) {
		t.Fatalf("import: %d %s", st, body)
	}
	if kind, top := e.ask(t, "店门口好停车吗"); kind != "kb" || top != "parking" {
		t.Fatalf("imported entry: %s %s", kind, top)
	}
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	fw, _ := w.CreateFormFile("file", "kb.yaml")
	io.Copy(fw, bytes.NewReader(file)) //nolint:errcheck
	w.Close()
	st, body, _ = e.raw(t, "POST", "/api/v1/owner/kb/import", e.owner, w.FormDataContentType(), mp.Bytes())
	if st != 200 || json.Unmarshal(body, &rep) != nil || rep.Unchanged != len(entries) {
		t.Fatalf("multipart import: %d %s", st, body)
	}
	st, body, _ = e.raw(t, "POST", "/api/v1/owner/kb/import", e.owner, "application/yaml", []byte("entries: [{id: a, title: t}]"))
	if st != 400 || !strings.Contains(decodeErr(t, body).Error.Message, "请填写回答") {
		t.Fatalf("bad import: %d %s", st, body)
	}
}

func TestAssistantRecordRoutes(t *testing.T) {
	e := newKBEnv(t)
	ctx := context.Background()
	if _, err := SeedKnowledge(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	if err := LoadKnowledge(ctx, e.db, e.a); err != nil {
		t.Fatal(err)
	}
	d := &assistant.Desk{Assistant: e.a, Records: AnswerRecords{DB: e.db}}
	nobody := assistant.Presence{}
	for _, m := range []string{"押金咋退", "谢谢", "几点开门", "转人工", "帮我写作文"} {
		if _, err := d.Handle(ctx, assistant.Message{Conversation: "7", Text: m}, nobody, nil); err != nil {
			t.Fatal(err)
		}
	}
	var recs struct {
		Records []struct {
			Question string `json:"question"`
			Outcome  string `json:"outcome"`
			Handoff  string `json:"handoff"`
		} `json:"records"`
	}
	if st := e.json(t, "GET", "/api/v1/owner/assistant/records", e.owner, nil, &recs); st != 200 || len(recs.Records) != 4 {
		t.Fatalf("records: %d %+v", st, recs)
	}
	if r := recs.Records[3]; r.Question != "押金咋退" || r.Outcome != "resolved" {
		t.Errorf("oldest record: %+v", r)
	}
	if st := e.json(t, "GET", "/api/v1/owner/assistant/records?handoff=true", e.owner, nil, &recs); st != 200 || len(recs.Records) != 2 || recs.Records[0].Handoff != "low_confidence" {
		t.Fatalf("handoffs: %d %+v", st, recs)
	}
	if st := e.json(t, "GET", "/api/v1/owner/assistant/records?outcome=maybe", e.owner, nil, nil); st != 400 {
		t.Fatalf("bad outcome: %d", st)
	}
	var stats struct {
		Stats  store.AnswerStats `json:"stats"`
		Share  *float64          `json:"unresolved_share"`
		Since  time.Time         `json:"since"`
		Period int               `json:"days"`
	}
	if st := e.json(t, "GET", "/api/v1/owner/assistant/stats?days=1", e.owner, nil, &stats); st != 200 {
		t.Fatalf("stats: %d", st)
	}
	if stats.Stats.Total != 4 || stats.Stats.Resolved != 1 || stats.Stats.Unresolved != 3 || stats.Stats.Pending != 0 || stats.Share == nil || *stats.Share != 0.75 {
		t.Fatalf("stats: %+v share %v", stats.Stats, stats.Share)
	}
}

func TestSyncKnowledgePicksUpOtherInstancesEdits(t *testing.T) {
	e := newKBEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other, _ := assistant.New(nil, assistant.Options{}) // another instance's assistant
	done := make(chan struct{})
	go func() { SyncKnowledge(ctx, e.db, other, 10*time.Millisecond, nil); close(done) }()
	row := store.KBEntry{Slug: "parking", Title: "店门口能停车吗", Answer: "店门口有 4 个免费车位。", Enabled: true}
	if err := e.db.CreateKBEntry(ctx, &row); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		ans, _ := other.Answer(ctx, assistant.Question{Text: "能停车吗"}, nil)
		if ans.Kind == assistant.AnswerKnowledge {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other instance never saw the new entry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
