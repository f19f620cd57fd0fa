package wxsim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// envelope is one ready-to-send HTTP request of a push.
type envelope struct {
	url         string
	body        []byte
	contentType string
}

// pushJob is everything needed to (re)send one push; it is built under s.mu
// and sent without it, because the gateway typically calls back into the
// simulator (custom/send, media/get) while handling the push.
type pushJob struct {
	push  *Push
	build func(now time.Time) (envelope, error) // fresh timestamp/nonce per attempt
	judge func(status int, body []byte) (ok bool, reply string, err error)
}

// runPush sends a push with up to Push.Attempts attempts (rule S9). The
// plaintext, and so the MsgId, is the same on every attempt: the gateway must
// dedupe on it.
func (s *Simulator) runPush(ctx context.Context, job pushJob) {
	p := job.push
	if p.URL == "" {
		s.finishPush(p, OutcomeNoURL, "")
		return
	}
	if f, ok := s.faults.fire(p.Target); ok {
		if f.DropPush {
			s.log.Info("push dropped by fault", "target", p.Target, "push", p.ID)
			s.finishPush(p, OutcomeDropped, "")
			return
		}
		if err := sleep(ctx, f.Latency); err != nil {
			s.finishPush(p, OutcomeFailed, "")
			return
		}
	}
	for i := range s.cfg.Push.Attempts {
		if i > 0 {
			if err := sleep(ctx, s.cfg.Push.RetryDelay); err != nil {
				break
			}
		}
		att, reply := s.attempt(ctx, job)
		s.mu.Lock()
		p.Attempts = append(p.Attempts, att)
		s.mu.Unlock()
		if att.OK {
			s.finishPush(p, OutcomeDelivered, reply)
			return
		}
		s.log.Warn("push attempt failed", "target", p.Target, "push", p.ID, "attempt", i+1,
			"status", att.Status, "err", att.Err)
	}
	s.finishPush(p, OutcomeFailed, "")
}

func (s *Simulator) attempt(ctx context.Context, job pushJob) (PushAttempt, string) {
	att := PushAttempt{At: s.clock.Now()}
	start := time.Now()
	defer func() { att.Duration = time.Since(start) }()
	env, err := job.build(att.At)
	if err != nil {
		att.Err = err.Error()
		return att, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.url, bytes.NewReader(env.body))
	if err != nil {
		att.Err = err.Error()
		return att, ""
	}
	req.Header.Set("Content-Type", env.contentType)
	req.Header.Set("User-Agent", "Mozilla/4.0 (wxsim)")
	resp, err := s.client.Do(req)
	if err != nil {
		att.Err = err.Error()
		att.Duration = time.Since(start)
		return att, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	att.Status = resp.StatusCode
	att.Body = string(body[:min(len(body), 256)])
	att.Duration = time.Since(start)
	if err != nil {
		att.Err = "reading reply: " + err.Error()
		return att, ""
	}
	ok, reply, jerr := job.judge(resp.StatusCode, body)
	if jerr != nil {
		att.Err = jerr.Error()
	}
	att.OK = ok
	return att, reply
}

func (s *Simulator) finishPush(p *Push, outcome, reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Outcome = outcome
	p.Reply = reply
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withQuery appends params to a callback URL that may already carry a query.
func withQuery(base string, params url.Values) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("wxsim: callback URL: %w", err)
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// judgeWeChat: the mini-program push succeeded only on HTTP 200 with body
// "success" or nothing. Anything else (including a passive reply, which
// mini-programs cannot send) is a failure and is retried.
func judgeWeChat(status int, body []byte) (bool, string, error) {
	if status != http.StatusOK {
		return false, "", fmt.Errorf("HTTP %d", status)
	}
	switch b := strings.TrimSpace(string(body)); b {
	case "", "success":
		return true, "", nil
	default:
		return false, "", fmt.Errorf("reply is neither empty nor \"success\"")
	}
}

// mpEnvelope wraps a mini-program plaintext per push mode (§1.7).
func (s *Simulator) mpEnvelope(target, format, mode string, plain []field, now time.Time) (envelope, error) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nc := nonce()
	params := url.Values{
		"signature": {util.Signature(s.cfg.Token, ts, nc)},
		"timestamp": {ts},
		"nonce":     {nc},
	}
	contentType := "text/xml"
	if format == FormatJSON {
		contentType = "application/json"
	}
	var fields []field
	if mode == PushPlaintext {
		fields = plain
	} else {
		enc, err := encrypt([]byte(render(format, plain)), s.cfg.AppID, s.cfg.EncodingAESKey)
		if err != nil {
			return envelope{}, err
		}
		params.Set("encrypt_type", "aes")
		params.Set("msg_signature", util.Signature(s.cfg.Token, ts, nc, enc))
		if mode == PushCompatible {
			fields = append(append(fields, plain...), str("Encrypt", enc))
		} else {
			fields = []field{str("ToUserName", s.cfg.OriginalID), str("Encrypt", enc)}
		}
	}
	u, err := withQuery(target, params)
	if err != nil {
		return envelope{}, err
	}
	return envelope{url: u, body: []byte(render(format, fields)), contentType: contentType}, nil
}

// weComEnvelope wraps a WeCom plaintext XML (§2.5): always encrypted.
func (s *Simulator) weComEnvelope(target, plain string, now time.Time) (envelope, error) {
	enc, err := encrypt([]byte(plain), s.cfg.CorpID, s.cfg.WeComAESKey)
	if err != nil {
		return envelope{}, err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nc := nonce()
	u, err := withQuery(target, url.Values{
		"msg_signature": {util.Signature(s.cfg.WeComToken, ts, nc, enc)},
		"timestamp":     {ts},
		"nonce":         {nc},
	})
	if err != nil {
		return envelope{}, err
	}
	body := renderXML([]field{
		str("ToUserName", s.cfg.CorpID),
		str("AgentID", strconv.Itoa(s.cfg.AgentID)),
		str("Encrypt", enc),
	})
	return envelope{url: u, body: []byte(body), contentType: "text/xml"}, nil
}

// passiveReply is WeCom's encrypted passive reply envelope.
type passiveReply struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// judgeWeCom: HTTP 200 with an empty body (or "success") acknowledges; a body
// that is a correctly signed and encrypted passive reply is accepted and its
// text shown to the member; anything else fails.
func (s *Simulator) judgeWeCom(status int, body []byte) (bool, string, error) {
	if status != http.StatusOK {
		return false, "", fmt.Errorf("HTTP %d", status)
	}
	b := strings.TrimSpace(string(body))
	if b == "" || b == "success" {
		return true, "", nil
	}
	var pr passiveReply
	if err := xml.Unmarshal([]byte(b), &pr); err != nil || pr.Encrypt == "" {
		return false, "", errors.New("reply is neither empty nor an encrypted passive reply")
	}
	if util.Signature(s.cfg.WeComToken, pr.TimeStamp, pr.Nonce, pr.Encrypt) != pr.MsgSignature {
		return false, "", errors.New("passive reply: MsgSignature mismatch")
	}
	_, plain, err := util.DecryptMsg(s.cfg.CorpID, pr.Encrypt, s.cfg.WeComAESKey)
	if err != nil {
		return false, "", fmt.Errorf("passive reply: %v", err)
	}
	return true, string(plain), nil
}
