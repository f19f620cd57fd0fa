package paysim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// authScheme is the only Authorization scheme (and Wechatpay-Signature-Type)
// of API v3.
const authScheme = "WECHATPAY2-SHA256-RSA2048"

// probePrefix starts a signature-probe signature; merchants must reject it.
const probePrefix = "WECHATPAY/SIGNTEST/"

// skewWindow is how far a merchant's timestamp may be from ours.
const skewWindow = 5 * time.Minute

// maxRequestBytes bounds request bodies; real requests are a few KiB.
const maxRequestBytes = 1 << 20

// errReply is an error answer: `{"code":…,"message":…,"detail":…}`.
type errReply struct {
	status  int
	code    string
	message string
	detail  *errDetail
}

type errDetail struct {
	Field    string `json:"field,omitempty"`
	Value    any    `json:"value,omitempty"`
	Issue    string `json:"issue,omitempty"`
	Location string `json:"location,omitempty"`
}

// paramError is 400 PARAM_ERROR about one body field.
func paramError(field string, value any, issue string) *errReply {
	return &errReply{
		status:  http.StatusBadRequest,
		code:    "PARAM_ERROR",
		message: "参数错误：" + field + " " + issue,
		detail:  &errDetail{Field: field, Value: value, Issue: issue, Location: "body"},
	}
}

// reply is what an API handler produces: a JSON value to send with status, or
// an error answer. A nil value with status 204 is an empty body.
type reply struct {
	status int
	value  any
	err    *errReply
}

func ok(v any) reply         { return reply{status: http.StatusOK, value: v} }
func noContent() reply       { return reply{status: http.StatusNoContent} }
func fail(e *errReply) reply { return reply{err: e} }
func failf(status int, code, format string, args ...any) reply {
	return fail(&errReply{status: status, code: code, message: fmt.Sprintf(format, args...)})
}

// apiRequest is an authenticated API request.
type apiRequest struct {
	r    *http.Request
	body []byte
}

// api wraps an API handler with what every endpoint shares: body limit,
// fault injection, merchant authentication, signing the answer.
func (s *Server) api(h func(*apiRequest) reply) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := r.URL.Path
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
		if err != nil || len(body) > maxRequestBytes {
			s.writeError(w, &errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "请求体读取失败或超过 1 MiB"})
			return
		}
		f, faulty := s.fault(endpoint)
		if faulty && f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-r.Context().Done():
				return
			}
		}
		if faulty && f.HTTPStatus >= 400 {
			s.log.Info("fault: injected error answer", "endpoint", endpoint, "status", f.HTTPStatus)
			s.writeError(w, faultReply(f.HTTPStatus))
			return
		}
		if err := s.authenticate(r, body); err != nil {
			s.log.Info("request rejected: SIGN_ERROR", "endpoint", endpoint, "reason", err.Error())
			s.writeError(w, &errReply{status: http.StatusUnauthorized, code: "SIGN_ERROR", message: "签名错误：" + err.Error()})
			return
		}
		rep := h(&apiRequest{r: r, body: body})
		if faulty && f.Drop {
			// The work is done but the answer is lost, like a timeout after
			// WeChat Pay committed: the merchant must retry idempotently.
			s.log.Info("fault: answer dropped after processing", "endpoint", endpoint)
			panic(http.ErrAbortHandler)
		}
		if rep.err != nil {
			s.writeError(w, rep.err)
			return
		}
		var out []byte
		if rep.value != nil {
			if out, err = json.Marshal(rep.value); err != nil {
				s.writeError(w, &errReply{status: http.StatusInternalServerError, code: "SYSTEM_ERROR", message: "系统错误"})
				return
			}
		}
		s.writeSigned(w, rep.status, out)
	})
}

// faultReply is Pay's error answer for an injected status.
func faultReply(status int) *errReply {
	switch {
	case status == http.StatusTooManyRequests:
		return &errReply{status: status, code: "FREQUENCY_LIMITED", message: "频率超限"}
	case status >= 500:
		return &errReply{status: status, code: "SYSTEM_ERROR", message: "系统错误"}
	case status == http.StatusUnauthorized:
		return &errReply{status: status, code: "SIGN_ERROR", message: "签名错误"}
	case status == http.StatusForbidden:
		return &errReply{status: status, code: "NO_AUTH", message: "商户无权限"}
	case status == http.StatusNotFound:
		return &errReply{status: status, code: "RESOURCE_NOT_EXISTS", message: "资源不存在"}
	default:
		return &errReply{status: status, code: "INVALID_REQUEST", message: "请求无效"}
	}
}

func (s *Server) writeError(w http.ResponseWriter, e *errReply) {
	body, err := json.Marshal(struct {
		Code    string     `json:"code"`
		Message string     `json:"message"`
		Detail  *errDetail `json:"detail,omitempty"`
	}{e.code, e.message, e.detail})
	if err != nil {
		body = []byte(`{"code":"SYSTEM_ERROR","message":"系统错误"}`)
	}
	s.writeSigned(w, e.status, body)
}

// writeSigned sends an answer with WeChat Pay's signature headers. Every
// answer is signed, 204 and errors included; with SignProbeRate some carry a
// probe signature instead, which a correct merchant rejects.
func (s *Server) writeSigned(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	for k, v := range s.signatureHeaders(body, s.chance(s.cfg.SignProbeRate)) {
		h.Set(k, v)
	}
	h.Set("Request-ID", s.randString(36, hexUpper))
	if len(body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// signatureHeaders signs "timestamp\nnonce\nbody\n" with the platform key,
// or, for a probe, puts a WECHATPAY/SIGNTEST/ signature in its place.
func (s *Server) signatureHeaders(body []byte, probe bool) map[string]string {
	ts := strconv.FormatInt(s.wireNow().Unix(), 10)
	nonce := s.randString(32, hexLower)
	var sig string
	if probe {
		sig = probePrefix + base64.StdEncoding.EncodeToString([]byte(s.randString(64, alnum)))
	} else {
		sig = s.sign([]byte(ts + "\n" + nonce + "\n" + string(body) + "\n"))
	}
	return map[string]string{
		"Wechatpay-Timestamp":      ts,
		"Wechatpay-Nonce":          nonce,
		"Wechatpay-Signature":      sig,
		"Wechatpay-Serial":         s.cfg.PlatformSerial,
		"Wechatpay-Signature-Type": authScheme,
	}
}

// sign is SHA256withRSA with the platform key, base64.
func (s *Server) sign(msg []byte) string {
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, s.platformKey, crypto.SHA256, sum[:])
	if err != nil { // only for a broken key, which New would not build
		panic(fmt.Sprintf("paysim: sign: %v", err))
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// verifyMerchant checks a SHA256withRSA signature by the merchant key.
func (s *Server) verifyMerchant(msg []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("signature is not base64")
	}
	sum := sha256.Sum256(msg)
	if rsa.VerifyPKCS1v15(s.cfg.MerchantPublicKey, crypto.SHA256, sum[:], sig) != nil {
		return errors.New("signature does not verify with the merchant public key")
	}
	return nil
}

// authenticate enforces S15 on one request: Authorization format (the five
// pairs in any order), mchid, serial_no, timestamp within ±5 min, signature
// over method, path+query, timestamp, nonce and body, and a nonce not seen
// before. The nonce is recorded only after the signature verifies, so forged
// requests cannot burn a merchant's nonces.
func (s *Server) authenticate(r *http.Request, body []byte) error {
	header := r.Header.Get("Authorization")
	if header == "" {
		return errors.New("missing Authorization header")
	}
	scheme, rest, _ := strings.Cut(header, " ")
	if scheme != authScheme {
		return fmt.Errorf("authorization scheme %q, want %s", scheme, authScheme)
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return err
	}
	for _, k := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if params[k] == "" {
			return fmt.Errorf("authorization lacks %s", k)
		}
	}
	if params["mchid"] != s.cfg.MchID {
		return fmt.Errorf("mchid %q is not this merchant", params["mchid"])
	}
	if !strings.EqualFold(params["serial_no"], s.cfg.MerchantSerial) {
		return fmt.Errorf("serial_no %q is not a certificate of this merchant", params["serial_no"])
	}
	ts := params["timestamp"]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strings.TrimLeft(ts, "0123456789") != "" {
		return fmt.Errorf("timestamp %q is not unix seconds", ts)
	}
	now := s.wireNow()
	if d := now.Sub(time.Unix(sec, 0)); d > skewWindow || d < -skewWindow {
		return fmt.Errorf("timestamp %s is %s away from server time", ts, d.Round(time.Second))
	}
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	msg := r.Method + "\n" + target + "\n" + ts + "\n" + params["nonce_str"] + "\n" + string(body) + "\n"
	if err := s.verifyMerchant([]byte(msg), params["signature"]); err != nil {
		return fmt.Errorf("%v (signed string must be %q)", err, r.Method+`\n`+target+`\n`+ts+`\n`+params["nonce_str"]+`\n<body>\n`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nonce := params["nonce_str"]
	if _, seen := s.nonces[nonce]; seen {
		return fmt.Errorf("nonce_str %q was already used", nonce)
	}
	for n, at := range s.nonces {
		// Past twice the window a replay fails the timestamp check anyway.
		if now.Sub(at) > 2*skewWindow {
			delete(s.nonces, n)
		}
	}
	s.nonces[nonce] = now
	return nil
}

// parseAuthParams reads `k1="v1",k2="v2",…`: any order, optional spaces
// around the commas, each key once.
func parseAuthParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		key, rest, found := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !found || key == "" || strings.ContainsAny(key, `," `) {
			return nil, fmt.Errorf("authorization: malformed pair near %q", truncate(s, 24))
		}
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("authorization: value of %s is not quoted", key)
		}
		value, after, closed := strings.Cut(rest[1:], `"`)
		if !closed {
			return nil, fmt.Errorf("authorization: value of %s is not closed", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("authorization: %s given twice", key)
		}
		out[key] = value
		after = strings.TrimLeft(after, " \t")
		if after == "" {
			break
		}
		if after[0] != ',' {
			return nil, fmt.Errorf("authorization: want ',' after %s", key)
		}
		s = after[1:]
	}
	if len(out) == 0 {
		return nil, errors.New("authorization has no parameters")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
