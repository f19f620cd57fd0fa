package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
)

// lockedBuffer collects a command's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const testDataKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes

func envFrom(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// runCmd runs a short command to completion.
func runCmd(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb lockedBuffer
	code = run(context.Background(), args, envFrom(vars), &out, &errb)
	return code, out.String(), errb.String()
}

type running struct {
	base   string
	stdout *lockedBuffer
	stderr *lockedBuffer
	stop   func() int
}

// start runs a long-lived command (serve, demo) in the background and waits
// until it answers /healthz.
func start(t *testing.T, vars map[string]string, args ...string) *running {
	t.Helper()
	vars["TACKLEGATE_HTTP_ADDR"] = freeAddr(t)
	return startAt(t, vars, args...)
}

// startAt is start on the address vars already name.
func startAt(t *testing.T, vars map[string]string, args ...string) *running {
	t.Helper()
	addr := vars["TACKLEGATE_HTTP_ADDR"]
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{base: "http://" + addr, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, envFrom(vars), r.stdout, r.stderr) }()
	var once sync.Once
	var code int
	r.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("%v did not stop within 20s", args)
			}
		})
		return code
	}
	t.Cleanup(func() { r.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case c := <-done:
			t.Fatalf("%v exited with %d before answering:\n%s", args, c, r.stderr)
		default:
		}
		if resp, err := http.Get(r.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%v did not answer /healthz within 20s:\n%s", args, r.stderr)
	return nil
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestServeEndToEnd(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			dbURL := tg.Fresh(t)
			// An explicit key: without one, PostgreSQL falls back to ./data/data.key in the working folder.
			r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": dbURL, "TACKLEGATE_LOG_FORMAT": "json", "TACKLEGATE_DATA_KEY": testDataKey}, "serve")

			code, hdr, body := get(t, r.base+"/healthz")
			if code != 200 || !strings.Contains(string(body), `"ok"`) || hdr.Get("X-Request-Id") == "" {
				t.Errorf("healthz: %d %s %v", code, body, hdr)
			}

			code, _, body = get(t, r.base+"/readyz")
			var ready struct {
				Status   string            `json:"status"`
				Checks   map[string]string `json:"checks"`
				Channels map[string]string `json:"channels"`
			}
			if err := json.Unmarshal(body, &ready); err != nil || code != 200 || ready.Status != "ready" || ready.Checks["database"] != "ok" {
				t.Errorf("readyz: %d %s", code, body)
			}
			if ready.Channels["wechat"] != "off" || ready.Channels["wecom"] != "off" || ready.Channels["wechatpay"] != "off" {
				t.Errorf("readyz channels: %v", ready.Channels)
			}

			code, hdr, body = get(t, r.base+"/api/v1/nothing-here")
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || code != 404 || e.Error.Code != "not_found" || e.Error.Message == "" {
				t.Errorf("unknown route: %d %s", code, body)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("404 content type %q", hdr.Get("Content-Type"))
			}

			code, _, body = get(t, r.base+"/metrics")
			if code != 200 || !strings.Contains(string(body), `tacklegate_http_requests_total{method="GET",route="/healthz",status="200"}`) {
				t.Errorf("metrics: %d\n%.400s", code, body)
			}

			// The assistant runs without a language model; its owner routes are mounted.
			if code, _, body := get(t, r.base+"/api/v1/owner/kb"); code != 401 {
				t.Errorf("owner knowledge base without login: %d %s", code, body)
			}
			if !strings.Contains(r.stderr.String(), "no language model is configured") {
				t.Errorf("start-up does not say the assistant runs without a model:\n%s", r.stderr)
			}

			warn := r.stderr.String()
			if !strings.Contains(warn, "channels switched off") || !strings.Contains(warn, "wechat, wechatpay, wecom") {
				t.Errorf("no start-up warning naming the switched-off channels:\n%s", warn)
			}
			if c := r.stop(); c != exitOK {
				t.Errorf("exit code after SIGTERM-equivalent: %d\n%s", c, r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "stopped") {
				t.Errorf("no clean stop logged:\n%s", r.stderr)
			}
		})
	}
}

// TestShutdownDrainsInFlight checks that a request already being served when
// the stop signal comes is answered, not cut off.
func TestShutdownDrainsInFlight(t *testing.T) {
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": storetest.SQLiteURL(t)}, "serve")
	// A slow client: the request line is sent, the server is mid-request
	// when we stop it; a keep-alive idle connection must not hold shutdown.
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /readyz HTTP/1.1\r\nHost: x\r\n")
	// Let the server read the first bytes: until then the connection is
	// idle and may rightly be closed.
	time.Sleep(150 * time.Millisecond)
	stopped := make(chan int, 1)
	go func() { stopped <- r.stop() }()
	time.Sleep(200 * time.Millisecond)
	fmt.Fprintf(conn, "Connection: close\r\n\r\n")
	reply, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(reply), "HTTP/1.1 200") {
		t.Errorf("in-flight request not answered during shutdown: %q", reply)
	}
	if c := <-stopped; c != exitOK {
		t.Errorf("exit %d", c)
	}
}

func TestBadConfigExitsTwoAndWritesNothing(t *testing.T) {
	tests := []struct {
		name, variable, value string
	}{
		{"addr", "TACKLEGATE_HTTP_ADDR", "nonsense"},
		{"data key", "TACKLEGATE_DATA_KEY", "short"},
		{"skew", "TACKLEGATE_CALLBACK_MAX_SKEW", "soon"},
		{"wechat incomplete", "TACKLEGATE_WECHAT_APP_ID", "wx1234567890abcdef"},
		{"llm without model", "TACKLEGATE_LLM_BASE_URL", "https://api.example.com/v1"},
		{"assistant mode", "TACKLEGATE_ASSISTANT_MODE", "always"},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"serve", "demo", "migrate"} {
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				dir := t.TempDir()
				vars := map[string]string{
					"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "sub", "x.db"),
					tt.variable:               tt.value,
				}
				args := []string{cmd}
				if cmd == "migrate" {
					args = append(args, "up")
				}
				code, _, stderr := runCmd(t, vars, args...)
				if code != exitUsage {
					t.Errorf("exit %d, want %d", code, exitUsage)
				}
				if !strings.Contains(stderr, tt.variable) {
					t.Errorf("message does not name %s:\n%s", tt.variable, stderr)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("bad configuration wrote %d entries in %s", len(entries), dir)
				}
			})
		}
	}
}

func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	code, _, stderr := runCmd(t, map[string]string{
		"TACKLEGATE_HTTP_ADDR":    ln.Addr().String(),
		"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "x.db"),
	}, "demo")
	if code != exitFail || !strings.Contains(stderr, "already taken") || !strings.Contains(stderr, "TACKLEGATE_HTTP_ADDR=") {
		t.Errorf("exit %d, message:\n%s", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a taken port still wrote files: %d entries", len(entries))
	}
}

func TestMigrateCommands(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"TACKLEGATE_DATABASE_URL": tg.Fresh(t), "TACKLEGATE_DATA_KEY": testDataKey}
			if tg.Name == "sqlite" {
				code, _, stderr := runCmd(t, vars, "migrate", "status")
				if code != exitFail || !strings.Contains(stderr, "migrate up") {
					t.Errorf("status before any database: %d %s", code, stderr)
				}
			}
			code, out, stderr := runCmd(t, vars, "migrate", "up")
			if code != exitOK || !strings.Contains(out, "applied 00001 00001_app_meta.sql") {
				t.Fatalf("migrate up: %d\n%s\n%s", code, out, stderr)
			}
			code, out, _ = runCmd(t, vars, "migrate", "up")
			if code != exitOK || !strings.Contains(out, "up to date") {
				t.Errorf("second migrate up: %d %s", code, out)
			}
			code, out, _ = runCmd(t, vars, "migrate", "status")
			if code != exitOK || !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
				t.Errorf("migrate status: %d\n%s", code, out)
			}
			if code, _, _ := runCmd(t, vars, "migrate", "sideways"); code != exitUsage {
				t.Errorf("migrate sideways: exit %d", code)
			}
		})
	}
}

func TestAutoMigrateOffRefusesStaleSchema(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "x.db"),
		"TACKLEGATE_AUTO_MIGRATE": "false",
		"TACKLEGATE_HTTP_ADDR":    freeAddr(t),
	}
	code, _, stderr := runCmd(t, vars, "serve")
	if code != exitFail || !strings.Contains(stderr, "migrate up") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestDataKey(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "x.db")}
	r := start(t, vars, "serve")
	r.stop()
	keyFile := filepath.Join(dir, "data.key")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no generated key file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(r.stderr.String(), "generated a data key") {
		t.Errorf("no warning about the generated key:\n%s", r.stderr)
	}
	key, _ := os.ReadFile(keyFile)
	if strings.Contains(r.stderr.String(), strings.TrimSpace(string(key))) {
		t.Error("the data key was logged")
	}
	// A different key for the same database is refused.
	vars["TACKLEGATE_DATA_KEY"] = testDataKey
	vars["TACKLEGATE_HTTP_ADDR"] = freeAddr(t)
	code, _, stderr := runCmd(t, vars, "serve")
	if code != exitFail || !strings.Contains(stderr, "TACKLEGATE_DATA_KEY is not the key") {
		t.Errorf("wrong key: exit %d\n%s", code, stderr)
	}
}

func TestDemoStartsAndPrintsWhere(t *testing.T) {
	dir := t.TempDir()
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "demo.db")}, "demo")
	out := r.stdout.String()
	for _, want := range []string{"tacklegate demo is running", r.base + "/healthz", "(SQLite)"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, cmd := range []string{"serve", "demo", "sim", "migrate", "members", "version"} {
		code, out, _ := runCmd(t, nil, cmd, "--help")
		if code != exitOK || !strings.Contains(out, "Usage: tacklegate "+cmd) {
			t.Errorf("%s --help: %d %q", cmd, code, out)
		}
	}
	if code, out, _ := runCmd(t, nil, "--help"); code != exitOK || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, nil, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, nil); code != exitUsage {
		t.Errorf("no command: %d", code)
	}
	if code, out, _ := runCmd(t, nil, "version"); code != exitOK || !strings.HasPrefix(out, "tacklegate ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, nil, "serve", "--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: %d", code)
	}
}

func TestPrintConfigRedacts(t *testing.T) {
	secret := "app-secret-should-not-print"
	code, out, _ := runCmd(t, map[string]string{
		"TACKLEGATE_WECHAT_APP_ID": "wx1234567890abcdef", "TACKLEGATE_WECHAT_APP_SECRET": secret,
	}, "serve", "--print-config")
	if code != exitOK || strings.Contains(out, secret) || !strings.Contains(out, "TACKLEGATE_WECHAT_APP_SECRET=<redacted>") {
		t.Errorf("print-config: %d\n%s", code, out)
	}
}
