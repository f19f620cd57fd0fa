package assistant

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/adapters/llm/llmtest"
)

// withModel is an assistant whose language model is the fake
// OpenAI-compatible server, reached over HTTP through the real client.
func withModel(t *testing.T, srv *llmtest.Server, mod func(*llm.Config)) *Assistant {
	t.Helper()
	cfg := llm.Config{BaseURL: srv.URL, APIKey: "test-key", Model: "chat-model", Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := llm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAssistant(t, func(o *Options) { o.Model = c })
	return a
}

type deltas struct {
	mu sync.Mutex
	s  []string
}

func (d *deltas) add(s string) { d.mu.Lock(); d.s = append(d.s, s); d.mu.Unlock() }
func (d *deltas) text() string { d.mu.Lock(); defer d.mu.Unlock(); return strings.Join(d.s, "") }

func TestModelPhrasesGroundedAnswer(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(r llmtest.Request) string {
		return "还装备验收后，押金会原路退回您的微信，不用申请。"
	})
	a := withModel(t, srv, nil)
	var d deltas
	ans, err := a.Answer(context.Background(), Question{Text: "押金咋退", At: testNow}, d.add)
	if err != nil {
		t.Fatal(err)
	}
	if !ans.Phrased || ans.Text != "还装备验收后，押金会原路退回您的微信，不用申请。" || ans.Top() != "deposit-refund" || ans.ModelError != "" {
		t.Fatalf("answer = %+v", ans)
	}
	if d.text() != ans.Text {
		t.Errorf("streamed %q, answer %q", d.text(), ans.Text)
	}
	req := srv.Requests()[0]
	sys := req.System()
	for _, want := range []string{"只能根据下面【资料】", "只回复三个字：转人工", "押金原路退回到您付款的微信账户", "不要猜测或编造"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, sys)
		}
	}
	if strings.Contains(sys, "{营业时间}") {
		t.Error("placeholders reached the model unrendered")
	}
	if req.LastUser().Text != "押金咋退" {
		t.Errorf("user message = %q", req.LastUser().Text)
	}
}

func TestModelCatalogKeepsLinks(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(r llmtest.Request) string { return "有的，4.5米和3.6米的台钓竿都适合钓鲫鱼。" })
	a := withModel(t, srv, nil)
	ans, err := a.Answer(context.Background(), Question{Text: "这周六有没有钓鲫鱼的竿子", At: testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Kind != AnswerCatalog || !ans.Phrased {
		t.Fatalf("answer = %+v", ans)
	}
	for _, u := range []string{"https://shop.example/items/1?from=2026-06-06&to=2026-06-07", "https://shop.example/items/2?from=2026-06-06&to=2026-06-07"} {
		if !strings.Contains(ans.Text, u) {
			t.Errorf("phrased catalog answer lost the link %s:\n%s", u, ans.Text)
		}
		if !strings.Contains(srv.Requests()[0].System(), u) {
			t.Errorf("the model was not given %s", u)
		}
	}
}

func TestModelTimeoutFallsBack(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetDelays(2*time.Second, 0)
	a := withModel(t, srv, func(c *llm.Config) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	ans, err := a.Answer(context.Background(), Question{Text: "押金咋退", At: testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Phrased || ans.Kind != AnswerKnowledge || !strings.Contains(ans.Text, "原路退回") || !strings.Contains(ans.ModelError, "超时") {
		t.Fatalf("answer = %+v", ans)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("fallback took %v", d)
	}
}

func TestModelRefusalFallsBackSilently(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(llmtest.Request) string { return "转人工" })
	a := withModel(t, srv, nil)
	var d deltas
	ans, err := a.Answer(context.Background(), Question{Text: "押金咋退", At: testNow}, d.add)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Phrased || !strings.Contains(ans.Text, "原路退回") || ans.ModelError == "" {
		t.Fatalf("answer = %+v", ans)
	}
	if strings.Contains(d.text(), "转人工") {
		t.Errorf("the refusal token was streamed to the customer: %q", d.text())
	}
}

func TestRefusedQuestionNeverReachesModel(t *testing.T) {
	srv := llmtest.New(t)
	a := withModel(t, srv, nil)
	ans, err := a.Answer(context.Background(), Question{Text: "茅台股票现在能买吗", At: testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Kind != AnswerNone || ans.Handoff != ReasonLowConfidence {
		t.Fatalf("answer = %+v", ans)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("an unanswerable question was sent to the model (%d requests)", n)
	}
}

func TestImageQuestions(t *testing.T) {
	photo := &llm.Image{MIME: "image/jpeg", Data: []byte("\xff\xd8\xff fake jpeg")}

	// No model at all: a person looks at it.
	plain, _ := newTestAssistant(t, nil)
	ans, err := plain.Answer(context.Background(), Question{Text: "这个轮子怎么装", Image: photo, At: testNow}, nil)
	if err != nil || ans.Kind != AnswerNone || ans.Handoff != ReasonImage {
		t.Fatalf("no model: %+v, %v", ans, err)
	}

	// A text-only model: still a person.
	srv := llmtest.New(t)
	blind := withModel(t, srv, nil)
	ans, _ = blind.Answer(context.Background(), Question{Text: "这个轮子怎么装", Image: photo, At: testNow}, nil)
	if ans.Kind != AnswerNone || ans.Handoff != ReasonImage || len(srv.Requests()) != 0 {
		t.Fatalf("text-only model: %+v (%d requests)", ans, len(srv.Requests()))
	}

	// A vision model answers from the passages the text found.
	srv.SetReply(func(r llmtest.Request) string {
		if len(r.LastUser().Images) == 1 && strings.Contains(r.System(), "轮座") {
			return "这是纺车轮，先拧松轮座锁环，把轮脚插进凹槽再拧紧。"
		}
		return "转人工"
	})
	seeing := withModel(t, srv, func(c *llm.Config) { c.VisionModel = "qwen-vl-max" })
	ans, err = seeing.Answer(context.Background(), Question{Text: "这个轮子怎么装到竿上", Image: photo, At: testNow}, nil)
	if err != nil || ans.Kind != AnswerVision || !ans.Phrased || !strings.Contains(ans.Text, "轮座") {
		t.Fatalf("vision: %+v, %v", ans, err)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Model != "qwen-vl-max" || !strings.HasPrefix(last.LastUser().Images[0], "data:image/jpeg;base64,") {
		t.Fatalf("vision request: model %s images %d", last.Model, len(last.LastUser().Images))
	}

	// A photo alone, which the passages cannot cover: the model declines
	// and a person takes it.
	ans, _ = seeing.Answer(context.Background(), Question{Image: photo, At: testNow}, nil)
	if ans.Kind != AnswerNone || ans.Handoff != ReasonImage {
		t.Fatalf("declined photo: %+v", ans)
	}
}
