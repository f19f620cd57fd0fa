// Package llmtest is a fake OpenAI-compatible chat-completions server for
// tests: it speaks the real wire format over HTTP on loopback (JSON request,
// server-sent-event chunks, [DONE]), checks the bearer key, refuses images
// for models that cannot see, and can be slowed down to exercise timeouts
// and cancellation. It records every request it received.
package llmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is a received chat request, decoded.
type Request struct {
	Model    string
	Stream   bool
	Messages []Message
}

// Message is one received message; Images holds the data: URLs of its
// image parts.
type Message struct {
	Role   string
	Text   string
	Images []string
}

// System returns the text of the system message, if any.
func (r Request) System() string {
	for _, m := range r.Messages {
		if m.Role == "system" {
			return m.Text
		}
	}
	return ""
}

// LastUser returns the last user message.
func (r Request) LastUser() Message {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i]
		}
	}
	return Message{}
}

// Server is the fake. Set its fields before the client calls it.
type Server struct {
	URL string // base URL, ends in /v1: what TACKLEGATE_LLM_BASE_URL would be

	mu           sync.Mutex
	apiKey       string
	reply        func(Request) string
	firstDelay   time.Duration
	chunkDelay   time.Duration
	chunkRunes   int
	visionModels map[string]bool
	requests     []Request
	disconnects  int
	aborted      chan struct{}
}

// New starts a fake server, closed when the test ends. By default it
// requires the key "test-key", streams "好的。" in chunks of 4 runes, and
// treats models whose name contains "vision" or "vl" as able to see.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{apiKey: "test-key", chunkRunes: 4, aborted: make(chan struct{}, 16),
		reply: func(Request) string { return "好的。" }}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL + "/v1"
	return s
}

// SetReply sets the function that writes each answer.
func (s *Server) SetReply(f func(Request) string) { s.mu.Lock(); s.reply = f; s.mu.Unlock() }

// SetDelays slows the server: first before the first chunk, each between
// chunks.
func (s *Server) SetDelays(first, each time.Duration) {
	s.mu.Lock()
	s.firstDelay, s.chunkDelay = first, each
	s.mu.Unlock()
}

// SetVisionModels says exactly which model names accept images.
func (s *Server) SetVisionModels(names ...string) {
	s.mu.Lock()
	s.visionModels = map[string]bool{}
	for _, n := range names {
		s.visionModels[n] = true
	}
	s.mu.Unlock()
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Aborted receives one value each time a client went away before the answer
// was complete (a cancel or a timeout on the client side).
func (s *Server) Aborted() <-chan struct{} { return s.aborted }

func (s *Server) canSee(model string) bool {
	if s.visionModels != nil {
		return s.visionModels[model]
	}
	m := strings.ToLower(model)
	return strings.Contains(m, "vision") || strings.Contains(m, "vl")
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ}}) //nolint:errcheck
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeErr(w, http.StatusNotFound, "invalid_request_error", "unknown route "+r.Method+" "+r.URL.Path)
		return
	}
	s.mu.Lock()
	key, reply, first, each, n := s.apiKey, s.reply, s.firstDelay, s.chunkDelay, s.chunkRunes
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+key {
		writeErr(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided")
		return
	}
	var in struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Model == "" || len(in.Messages) == 0 {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	}
	req := Request{Model: in.Model, Stream: in.Stream}
	for _, m := range in.Messages {
		msg := Message{Role: m.Role}
		var text string
		if json.Unmarshal(m.Content, &text) == nil {
			msg.Text = text
		} else {
			var parts []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				ImageURL struct {
					URL string `json:"url"`
				} `json:"image_url"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				writeErr(w, http.StatusBadRequest, "invalid_request_error", "content must be a string or an array of parts")
				return
			}
			for _, p := range parts {
				switch p.Type {
				case "text":
					msg.Text += p.Text
				case "image_url":
					if !strings.HasPrefix(p.ImageURL.URL, "data:image/") && !strings.HasPrefix(p.ImageURL.URL, "https://") {
						writeErr(w, http.StatusBadRequest, "invalid_request_error", "image_url must be a data: or https: URL")
						return
					}
					msg.Images = append(msg.Images, p.ImageURL.URL)
				default:
					writeErr(w, http.StatusBadRequest, "invalid_request_error", "unknown content part type "+p.Type)
					return
				}
			}
		}
		req.Messages = append(req.Messages, msg)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	canSee := s.canSee(req.Model)
	s.mu.Unlock()
	for _, m := range req.Messages {
		if len(m.Images) > 0 && !canSee {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("model %s does not support image input", req.Model))
			return
		}
	}
	answer := reply(req)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "choices": []any{ //nolint:errcheck
			map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": answer}, "finish_reason": "stop"}}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return r.Context().Err() == nil
		}
		select {
		case <-r.Context().Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	abort := func() {
		s.mu.Lock()
		s.disconnects++
		s.mu.Unlock()
		select {
		case s.aborted <- struct{}{}:
		default:
		}
	}
	if !wait(first) {
		abort()
		return
	}
	runes := []rune(answer)
	for i := 0; i < len(runes); i += n {
		if i > 0 && !wait(each) {
			abort()
			return
		}
		piece := string(runes[i:min(i+n, len(runes))])
		chunk := map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": piece}, "finish_reason": nil}}}
		if !send(chunk) {
			abort()
			return
		}
	}
	send(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}})
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}
