package wxsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/silenceper/wechat/v2/util"
)

// VerifyResult is the outcome of a URL-verification handshake against the
// gateway, as the consoles perform it when the callback URL is saved.
type VerifyResult struct {
	Target   string `json:"target"` // PushWeChat or PushWeCom
	URL      string `json:"url"`
	OK       bool   `json:"ok"`       // answered 200 with exactly the expected body
	Status   int    `json:"status"`   // of the correctly signed request
	Body     string `json:"body"`     // first 256 bytes of its reply
	Expected string `json:"expected"` // what the body had to be
	// BadSignatureRejected: a second request with a wrong signature was not
	// answered with the expected body (a gateway that echoes anything fails).
	BadSignatureRejected bool   `json:"bad_signature_rejected"`
	Err                  string `json:"error,omitempty"`
}

// VerifyWeChatURL performs the mini-program handshake: GET with signature,
// timestamp, nonce and echostr; the gateway must echo echostr verbatim.
func (s *Simulator) VerifyWeChatURL(ctx context.Context) VerifyResult {
	s.mu.Lock()
	target := s.pushURL
	s.mu.Unlock()
	echo := randomString(19, digitSet)
	sign := func(ts, nc string) url.Values {
		return url.Values{"signature": {util.Signature(s.cfg.Token, ts, nc)}, "timestamp": {ts}, "nonce": {nc}, "echostr": {echo}}
	}
	forge := func(ts, nc string) url.Values {
		v := sign(ts, nc)
		v.Set("signature", util.Signature("not-the-token", ts, nc))
		return v
	}
	return s.verify(ctx, PushWeChat, target, echo, sign, forge)
}

// VerifyWeComURL performs the WeCom handshake: echostr is encrypted for the
// CorpID and signed into msg_signature; the gateway must answer the
// decrypted plaintext, nothing else.
func (s *Simulator) VerifyWeComURL(ctx context.Context) VerifyResult {
	s.mu.Lock()
	target := s.wecomURL
	s.mu.Unlock()
	plain := randomString(19, digitSet)
	enc, err := encrypt([]byte(plain), s.cfg.CorpID, s.cfg.WeComAESKey)
	if err != nil {
		return VerifyResult{Target: PushWeCom, URL: target, Err: err.Error()}
	}
	sign := func(ts, nc string) url.Values {
		return url.Values{"msg_signature": {util.Signature(s.cfg.WeComToken, ts, nc, enc)}, "timestamp": {ts}, "nonce": {nc}, "echostr": {enc}}
	}
	forge := func(ts, nc string) url.Values {
		v := sign(ts, nc)
		v.Set("msg_signature", util.Signature("not-the-token", ts, nc, enc))
		return v
	}
	return s.verify(ctx, PushWeCom, target, plain, sign, forge)
}

func (s *Simulator) verify(ctx context.Context, target, base, expected string, sign, forge func(ts, nc string) url.Values) VerifyResult {
	res := VerifyResult{Target: target, URL: base, Expected: expected}
	if base == "" {
		res.Err = "no callback URL configured"
		return res
	}
	ts := strconv.FormatInt(s.clock.Now().Unix(), 10)
	status, body, err := s.get(ctx, base, sign(ts, nonce()))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Status, res.Body = status, body[:min(len(body), 256)]
	res.OK = status == http.StatusOK && body == expected
	_, forgedBody, err := s.get(ctx, base, forge(ts, nonce()))
	res.BadSignatureRejected = err == nil && forgedBody != expected
	s.log.Info("URL verification", "target", target, "ok", res.OK, "bad_signature_rejected", res.BadSignatureRejected)
	return res
}

func (s *Simulator) get(ctx context.Context, base string, params url.Values) (int, string, error) {
	u, err := withQuery(base, params)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", errors.Join(errors.New("reading reply"), err)
	}
	return resp.StatusCode, string(body), nil
}
