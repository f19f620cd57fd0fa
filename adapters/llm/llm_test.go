package llm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/adapters/llm/llmtest"
	"github.com/tacklegate/tacklegate/rental"
)

func newClient(t *testing.T, srv *llmtest.Server, mod func(*llm.Config)) *llm.Client {
	t.Helper()
	cfg := llm.Config{BaseURL: srv.URL, APIKey: "test-key", Model: "chat-model", Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := llm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStreamDeliversChunksInOrder(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(r llmtest.Request) string { return "押金在验收后原路退回，一般几分钟到账。" })
	c := newClient(t, srv, nil)
	var deltas []string
	out, err := c.Stream(context.Background(), llm.Request{Messages: []llm.Message{
		{Role: llm.System, Text: "只根据资料回答"}, {Role: llm.User, Text: "押金咋退"},
	}}, func(d string) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "押金在验收后原路退回，一般几分钟到账。" || out.FinishReason != "stop" || out.Model != "chat-model" {
		t.Fatalf("completion = %+v", out)
	}
	if len(deltas) < 3 || strings.Join(deltas, "") != out.Text {
		t.Fatalf("deltas = %q", deltas)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || !reqs[0].Stream || reqs[0].Model != "chat-model" || reqs[0].System() != "只根据资料回答" || reqs[0].LastUser().Text != "押金咋退" {
		t.Fatalf("server saw %+v", reqs)
	}
}

func TestCancelClosesTheStream(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(llmtest.Request) string { return strings.Repeat("慢慢说。", 50) })
	srv.SetDelays(0, 50*time.Millisecond)
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		_, err := c.Stream(ctx, llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "你好"}}}, func(d string) { got <- d })
		done <- err
	}()
	<-got // the answer has started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, llm.ErrTimeout) {
			t.Fatalf("err = %v, want a wrapped context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Stream did not return after cancel")
	}
	select {
	case <-srv.Aborted():
	case <-time.After(2 * time.Second):
		t.Fatal("server never saw the client go away")
	}
}

func TestTimeout(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetDelays(time.Second, 0)
	c := newClient(t, srv, func(c *llm.Config) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := c.Stream(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "你好"}}}, nil)
	if !errors.Is(err, llm.ErrTimeout) || rental.ErrorKind(err) != rental.KindUnavailable {
		t.Fatalf("err = %v (kind %s), want ErrTimeout/unavailable", err, rental.ErrorKind(err))
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("timeout took %v", d)
	}
}

func TestVision(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n fake")
	req := llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "这个轮子怎么了", Images: []llm.Image{{Data: png}}}}}

	srv := llmtest.New(t)
	srv.SetVisionModels("qwen-vl-plus")
	blind := newClient(t, srv, nil)
	if blind.CanSee() {
		t.Fatal("CanSee without a vision model")
	}
	if _, err := blind.Stream(context.Background(), req, nil); rental.ErrorKind(err) != rental.KindUnavailable {
		t.Fatalf("image without vision model: err = %v", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("an image question reached the server without a vision model (%d requests)", n)
	}

	seeing := newClient(t, srv, func(c *llm.Config) { c.VisionModel = "qwen-vl-plus" })
	if _, err := seeing.Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Model != "qwen-vl-plus" || len(r.LastUser().Images) != 1 || !strings.HasPrefix(r.LastUser().Images[0], "data:image/png;base64,") || r.LastUser().Text != "这个轮子怎么了" {
		t.Fatalf("vision request = %+v", r)
	}
	// Text questions still go to the text model.
	if _, err := seeing.Stream(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "你好"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests()[1]; r.Model != "chat-model" {
		t.Fatalf("text question went to %s", r.Model)
	}

	// A server that rejects the image is an upstream error, not a crash.
	srv.SetVisionModels()
	if _, err := seeing.Stream(context.Background(), req, nil); rental.ErrorKind(err) != rental.KindUpstream || !strings.Contains(err.Error(), "does not support image") {
		t.Fatalf("rejected image: err = %v", err)
	}
}

func TestErrors(t *testing.T) {
	srv := llmtest.New(t)
	bad := newClient(t, srv, func(c *llm.Config) { c.APIKey = "wrong" })
	_, err := bad.Stream(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "hi"}}}, nil)
	if rental.ErrorKind(err) != rental.KindUpstream || !strings.Contains(err.Error(), "Incorrect API key") {
		t.Fatalf("bad key: %v", err)
	}
	down := newClient(t, srv, func(c *llm.Config) { c.BaseURL = "http://127.0.0.1:1/v1" })
	if _, err := down.Stream(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.User, Text: "hi"}}}, nil); rental.ErrorKind(err) != rental.KindUpstream {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  llm.Config
		want string // substring of the error; "" valid
	}{
		{llm.Config{}, ""},
		{llm.Config{BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini"}, ""},
		{llm.Config{Model: "m"}, "TACKLEGATE_LLM_BASE_URL is required"},
		{llm.Config{BaseURL: "ftp://x", Model: "m"}, "TACKLEGATE_LLM_BASE_URL must be"},
		{llm.Config{BaseURL: "http://localhost:11434/v1"}, "TACKLEGATE_LLM_MODEL is required"},
		{llm.Config{BaseURL: "http://h/v1", Model: "m", Timeout: -1}, "TACKLEGATE_LLM_TIMEOUT"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
