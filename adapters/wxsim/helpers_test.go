package wxsim

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// testEpoch is a fixed start so TTL boundaries are exact.
var testEpoch = time.Date(2026, 6, 8, 10, 0, 0, 0, shanghai)

// newSim starts a simulator on loopback with a frozen clock.
func newSim(t *testing.T, mutate func(*Config)) *Simulator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Now = FixedTime(testEpoch)
	cfg.Push.Timeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	s, err := Start(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type wxResp map[string]any

func (r wxResp) code() int {
	v, _ := r["errcode"].(float64)
	return int(v)
}

func (r wxResp) str(key string) string {
	v, _ := r[key].(string)
	return v
}

func decodeResp(t *testing.T, resp *http.Response) wxResp {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	var m wxResp
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	return m
}

func httpGet(t *testing.T, u string) wxResp {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return decodeResp(t, resp)
}

func httpPost(t *testing.T, u string, body any) wxResp {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return decodeResp(t, resp)
}

// mpToken fetches a mini-program token with /cgi-bin/token.
func mpToken(t *testing.T, s *Simulator) string {
	t.Helper()
	r := httpGet(t, s.WeChatBase()+"/cgi-bin/token?grant_type=client_credential&appid="+s.cfg.AppID+"&secret="+s.cfg.AppSecret)
	tok := r.str("access_token")
	if tok == "" {
		t.Fatalf("no token: %v", r)
	}
	return tok
}

func wecomToken(t *testing.T, s *Simulator) string {
	t.Helper()
	r := httpGet(t, s.WeComBase()+"/cgi-bin/gettoken?corpid="+s.cfg.CorpID+"&corpsecret="+url.QueryEscape(s.cfg.CorpSecret))
	tok := r.str("access_token")
	if tok == "" {
		t.Fatalf("no token: %v", r)
	}
	return tok
}

func withToken(base, path, token string) string {
	return base + path + "?access_token=" + url.QueryEscape(token)
}

func textMsg(to, content string) map[string]any {
	return map[string]any{"touser": to, "msgtype": "text", "text": map[string]string{"content": content}}
}

// upload posts a multipart file in field "media".
func upload(t *testing.T, u, filename string, data []byte) wxResp {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("media", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	resp, err := http.Post(u, mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return decodeResp(t, resp)
}

func wantCode(t *testing.T, what string, r wxResp, code int) {
	t.Helper()
	if got := r.code(); got != code {
		t.Fatalf("%s: errcode %d, want %d (%v)", what, got, code, r)
	}
}
