// Package llm is a small client for OpenAI-compatible chat-completion
// servers (OpenAI, DeepSeek, Qwen/DashScope compatible mode, Moonshot, a local
// Ollama or vLLM…), used by the assistant to phrase answers. It is optional:
// with no Config the assistant answers from retrieval alone.
//
// Only POST {BaseURL}/chat/completions is spoken, always with "stream": true
// (server-sent events), so that the first words reach the customer while the
// rest is still being written and so that cancelling the context stops the
// generation at once: the connection is closed and the server stops paying
// for tokens nobody reads. Images are sent as content parts with a data: URL
// and go to the vision model; without one, Stream refuses them.
//
// The package knows nothing about the shop. The assistant builds the prompt
// (gateway/assistant) and decides what to do when the model fails.
package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// Config says which server and models to use. The gateway's config fills it
// from these variables (config.LLM, wired in cmd/tacklegate):
//
//	TACKLEGATE_LLM_BASE_URL      e.g. https://api.openai.com/v1 (the part before /chat/completions)
//	TACKLEGATE_LLM_API_KEY       bearer token; may be empty for a local server
//	TACKLEGATE_LLM_MODEL         model for text questions
//	TACKLEGATE_LLM_VISION_MODEL  optional model that accepts images
//	TACKLEGATE_LLM_TIMEOUT       whole-answer limit, default 15s
type Config struct {
	BaseURL     string
	APIKey      string
	Model       string
	VisionModel string
	// Timeout bounds one whole answer, first byte to last. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxTokens bounds the answer's length; 0 means 600, plenty for a
	// chat reply in Chinese.
	MaxTokens int
	// HTTPClient is used when set (tests, proxies); its own Timeout should
	// be 0 because streaming answers are bounded by Timeout above.
	HTTPClient *http.Client
}

// DefaultTimeout is the answer time limit when Config.Timeout is 0. A
// customer waits for a chat reply about as long as for a person typing;
// beyond that the retrieval answer, ready in a millisecond, is better.
const DefaultTimeout = 15 * time.Second

// Enabled reports whether a model is configured at all.
func (c Config) Enabled() bool { return c.BaseURL != "" && c.Model != "" }

// Validate checks a configuration that is enabled, naming the variable at
// fault.
func (c Config) Validate() error {
	const op = "llm.Config.Validate"
	if c.BaseURL == "" && c.Model == "" && c.VisionModel == "" {
		return nil // off
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		return rental.Errorf(op, rental.KindInvalid, "TACKLEGATE_LLM_BASE_URL is required when a model is set")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return rental.Errorf(op, rental.KindInvalid, "TACKLEGATE_LLM_BASE_URL must be an http(s) URL such as https://api.openai.com/v1, got %q", c.BaseURL)
	case c.Model == "":
		return rental.Errorf(op, rental.KindInvalid, "TACKLEGATE_LLM_MODEL is required when TACKLEGATE_LLM_BASE_URL is set")
	case c.Timeout < 0:
		return rental.Errorf(op, rental.KindInvalid, "TACKLEGATE_LLM_TIMEOUT cannot be negative")
	}
	return nil
}

// Role is who speaks a message.
type Role string

const (
	System    Role = "system"
	User      Role = "user"
	Assistant Role = "assistant"
)

// Image is a picture the customer sent, inlined as a data: URL.
type Image struct {
	MIME string // image/jpeg, image/png…
	Data []byte
}

// Message is one turn of the conversation given to the model.
type Message struct {
	Role   Role
	Text   string
	Images []Image
}

// Request is one completion to generate.
type Request struct {
	Messages    []Message
	Temperature float64 // 0 is deterministic; grounded answers want it low
}

// HasImages reports whether any message carries an image.
func (r Request) HasImages() bool {
	for _, m := range r.Messages {
		if len(m.Images) > 0 {
			return true
		}
	}
	return false
}

// Completion is a finished answer.
type Completion struct {
	Text         string
	Model        string
	FinishReason string // "stop", "length"…
}

// Client talks to one OpenAI-compatible server.
type Client struct {
	cfg      Config
	http     *http.Client
	endpoint string
}

// New builds a client for an enabled, valid config.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, rental.Errorf("llm.New", rental.KindInvalid, "no model configured (TACKLEGATE_LLM_BASE_URL and TACKLEGATE_LLM_MODEL)")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 600
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	return &Client{cfg: cfg, http: hc, endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions"}, nil
}

// CanSee reports whether a vision model is configured.
func (c *Client) CanSee() bool { return c.cfg.VisionModel != "" }

// Timeout is the limit on one answer.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }

// wire types of the chat-completions API.
type (
	wireRequest struct {
		Model       string        `json:"model"`
		Messages    []wireMessage `json:"messages"`
		Stream      bool          `json:"stream"`
		Temperature float64       `json:"temperature"`
		MaxTokens   int           `json:"max_tokens,omitempty"`
	}
	wireMessage struct {
		Role    Role `json:"role"`
		Content any  `json:"content"` // a string, or []wirePart when there are images
	}
	wirePart struct {
		Type     string        `json:"type"` // "text" | "image_url"
		Text     string        `json:"text,omitempty"`
		ImageURL *wireImageURL `json:"image_url,omitempty"`
	}
	wireImageURL struct {
		URL string `json:"url"`
	}
	wireChunk struct {
		Model   string `json:"model"`
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
			Message *struct { // non-streaming servers that ignore "stream"
				Content string `json:"content"`
			} `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Error *wireError `json:"error"`
	}
	wireError struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	}
)

func encodeMessages(msgs []Message) []wireMessage {
	out := make([]wireMessage, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Images) == 0 {
			out = append(out, wireMessage{Role: m.Role, Content: m.Text})
			continue
		}
		parts := make([]wirePart, 0, len(m.Images)+1)
		if m.Text != "" {
			parts = append(parts, wirePart{Type: "text", Text: m.Text})
		}
		for _, img := range m.Images {
			mime := img.MIME
			if mime == "" {
				mime = http.DetectContentType(img.Data)
			}
			parts = append(parts, wirePart{Type: "image_url", ImageURL: &wireImageURL{
				URL: "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(img.Data),
			}})
		}
		out = append(out, wireMessage{Role: m.Role, Content: parts})
	}
	return out
}

// Stream generates a completion, calling onDelta (when not nil) with each
// piece of text as it arrives, and returns the whole text. It gives up after
// the configured timeout. Cancelling ctx — the customer wrote again — closes
// the connection at once; the error then wraps ctx's error, so
// errors.Is(err, context.Canceled) tells a cancel from a failure.
func (c *Client) Stream(ctx context.Context, req Request, onDelta func(string)) (Completion, error) {
	const op = "llm.Stream"
	model := c.cfg.Model
	if req.HasImages() {
		if c.cfg.VisionModel == "" {
			return Completion{}, rental.Errorf(op, rental.KindUnavailable, "没有配置识图模型 (no vision model: TACKLEGATE_LLM_VISION_MODEL)")
		}
		model = c.cfg.VisionModel
	}
	body, err := json.Marshal(wireRequest{Model: model, Messages: encodeMessages(req.Messages), Stream: true,
		Temperature: req.Temperature, MaxTokens: c.cfg.MaxTokens})
	if err != nil {
		return Completion{}, rental.Wrap(op, rental.KindInternal, "", err)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, ErrTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return Completion{}, rental.Wrap(op, rental.KindInternal, "", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if c.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return Completion{}, c.failure(op, ctx, tctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Completion{}, statusError(op, resp)
	}
	out, err := readStream(resp.Body, onDelta)
	if err != nil {
		if tctx.Err() != nil {
			return out, c.failure(op, ctx, tctx, err)
		}
		return out, err
	}
	if out.Model == "" {
		out.Model = model
	}
	return out, nil
}

// ErrTimeout is wrapped by the error of an answer that ran out of time, so
// that errors.Is tells a slow model from a broken one.
var ErrTimeout = errors.New("llm: answer took longer than the configured timeout")

// failure classifies a transport error: the caller's cancel, our timeout, or
// the network.
func (c *Client) failure(op string, parent, tctx context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		return rental.Wrap(op, rental.KindUnavailable, "回答已取消 (answer cancelled)", fmt.Errorf("%w: %w", parent.Err(), err))
	case context.Cause(tctx) == ErrTimeout:
		return rental.Wrap(op, rental.KindUnavailable, "语言模型超时 (model timed out after "+c.cfg.Timeout.String()+")", fmt.Errorf("%w: %w", ErrTimeout, err))
	}
	return rental.Wrap(op, rental.KindUpstream, "语言模型连接失败 (model server unreachable)", err)
}

func statusError(op string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error *wireError `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	cause := fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return rental.Wrap(op, rental.KindRateLimited, "语言模型繁忙 (model rate limited)", cause)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return rental.Wrap(op, rental.KindUpstream, "语言模型拒绝了密钥 (check TACKLEGATE_LLM_API_KEY)", cause)
	case resp.StatusCode >= 500:
		return rental.Wrap(op, rental.KindUpstream, "语言模型服务出错 (model server error)", cause)
	}
	return rental.Wrap(op, rental.KindUpstream, "语言模型拒绝了请求 (model refused the request)", cause)
}

// readStream reads server-sent events until [DONE] or the end of the body.
// A server that ignored "stream" and sent one JSON object is read too.
func readStream(r io.Reader, onDelta func(string)) (Completion, error) {
	const op = "llm.Stream"
	var (
		out  Completion
		text strings.Builder
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	apply := func(ch wireChunk) error {
		if ch.Error != nil {
			return rental.Wrap(op, rental.KindUpstream, "语言模型出错 (model error mid-answer)", errors.New(ch.Error.Message))
		}
		if ch.Model != "" {
			out.Model = ch.Model
		}
		for _, c := range ch.Choices {
			d := c.Delta.Content
			if c.Message != nil {
				d = c.Message.Content
			}
			if d != "" {
				text.WriteString(d)
				if onDelta != nil {
					onDelta(d)
				}
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				out.FinishReason = *c.FinishReason
			}
		}
		return nil
	}
	done := false
	var plain bytes.Buffer // a non-SSE (single JSON) body
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			if !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "event:") && !strings.HasPrefix(line, "id:") {
				plain.WriteString(line)
			}
			continue
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			break
		}
		if data == "" {
			continue
		}
		var ch wireChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return out, rental.Wrap(op, rental.KindUpstream, "语言模型返回了无法解析的数据 (malformed stream chunk)", err)
		}
		if err := apply(ch); err != nil {
			out.Text = text.String()
			return out, err
		}
	}
	if err := sc.Err(); err != nil {
		out.Text = text.String()
		return out, rental.Wrap(op, rental.KindUpstream, "语言模型连接中断 (stream broken)", err)
	}
	if !done && text.Len() == 0 && plain.Len() > 0 {
		var ch wireChunk
		if err := json.Unmarshal(plain.Bytes(), &ch); err != nil {
			return out, rental.Wrap(op, rental.KindUpstream, "语言模型返回了无法解析的数据 (malformed response)", err)
		}
		if err := apply(ch); err != nil {
			return out, err
		}
		done = true
	}
	out.Text = text.String()
	if !done && out.FinishReason == "" {
		return out, rental.Wrap(op, rental.KindUpstream, "语言模型回答不完整 (stream ended early)", io.ErrUnexpectedEOF)
	}
	return out, nil
}
