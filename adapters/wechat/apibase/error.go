package apibase

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/silenceper/wechat/v2/util"

	"github.com/tacklegate/tacklegate/rental"
)

// Error is the one error of a failed WeChat or WeCom API call (exported as
// wechat.APIError and wecom.APIError). Clients return it inside a
// rental.Error, so both errors.As(err, &*rental.Error) and
// errors.As(err, &*Error) work.
type Error struct {
	Op         string // our operation, e.g. "wechat.SendCustomerText"
	Code       int    // errcode the server answered; 0 when the failure was not an errcode answer
	Msg        string // errmsg, for logs only: branch on Code, never on Msg
	HTTPStatus int    // the status when the server answered anything but 200
	Network    bool   // no usable answer: connection, timeout, cancellation
	// TokenFetch is set when fetching the access token failed: there 40001
	// means a wrong secret, not a stale token.
	TokenFetch bool
	Err        error // transport or decoding cause; its text is redacted
}

// Errcodes the helpers test (WECHAT-PROTOCOLS.md §0).
const (
	CodeSystemBusy        = -1
	CodeInvalidCredential = 40001 // on a business call: token invalid or not the latest (mini-program)
	CodeInvalidToken      = 40014 // token invalid (WeCom; also documented by the mini-program)
	CodeTokenExpired      = 42001
	CodeDailyQuota        = 45009
	CodeMinuteQuota       = 45011
	CodeWindowClosed      = 45015
	CodeReplyCount        = 45047
	CodeUserRefused       = 43101
	CodeInvalidCode       = 40029
	CodeCodeUsed          = 40163
	CodeInvalidOpenID     = 40003
	CodeInvalidMediaID    = 40007
	CodeAllInvalid        = 81013
)

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Code != 0:
		fmt.Fprintf(&b, "errcode %d", e.Code)
		if e.Msg != "" {
			fmt.Fprintf(&b, " (%s)", Redact(e.Msg))
		}
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	case e.Network:
		b.WriteString("network failure")
	default:
		b.WriteString("unreadable answer")
	}
	if e.TokenFetch {
		b.WriteString(" while fetching the access token")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(Redact(e.Err.Error()))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports a failure that may pass later: system busy (-1), quota
// (45009, 45011), a 5xx/429 answer or a network failure. Back off before
// retrying; 45011 asks for at least a minute.
func (e *Error) Retryable() bool {
	switch e.Code {
	case CodeSystemBusy, CodeDailyQuota, CodeMinuteQuota:
		return true
	case 0:
		return e.Network || e.HTTPStatus >= 500 || e.HTTPStatus == 429
	}
	return false
}

// IsWindowClosed: a customer-service message outside the 48-hour window
// (45015); fall back to a subscribe message.
func (e *Error) IsWindowClosed() bool { return e.Code == CodeWindowClosed }

// IsQuotaExceeded: no sends left for this user — 5 customer-service
// messages per user message (45047) or no subscribe consent left (43101).
// Only the user can open new quota.
func (e *Error) IsQuotaExceeded() bool {
	return e.Code == CodeReplyCount || e.Code == CodeUserRefused
}

// IsTokenInvalid: a business call refused the access token (40001, 40014,
// 42001). The clients already refreshed and retried once.
func (e *Error) IsTokenInvalid() bool {
	if e.TokenFetch {
		return false
	}
	switch e.Code {
	case CodeInvalidCredential, CodeInvalidToken, CodeTokenExpired:
		return true
	}
	return false
}

// silenceper's own texts: some calls return fmt.Errorf("… errcode=%v ,
// errmsg=%v", …) instead of a *util.CommonError, and HTTP failures are
// fmt.Errorf("… uri=%v , statusCode=%v").
var (
	errcodeText = regexp.MustCompile(`errcode=(-?\d+)\s*,\s*errmsg=(.*)$`)
	statusText  = regexp.MustCompile(`statusCode=(\d{3})`)
)

// FromSDK turns an error of a silenceper call (or of a hand-written one)
// into an *Error for op. nil stays nil; an *Error passes unchanged.
func FromSDK(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var ce *util.CommonError
	if errors.As(err, &ce) {
		return &Error{Op: op, Code: int(ce.ErrCode), Msg: ce.ErrMsg}
	}
	if isNetwork(err) {
		return &Error{Op: op, Network: true, Err: redacted{err}}
	}
	text := err.Error()
	if m := errcodeText.FindStringSubmatch(text); m != nil {
		if code, cerr := strconv.Atoi(m[1]); cerr == nil {
			return &Error{Op: op, Code: code, Msg: strings.TrimSpace(m[2])}
		}
	}
	if m := statusText.FindStringSubmatch(text); m != nil {
		status, _ := strconv.Atoi(m[1])
		return &Error{Op: op, HTTPStatus: status, Err: redacted{err}}
	}
	return &Error{Op: op, Err: redacted{err}}
}

func isNetwork(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// secretParams are query parameters whose values must never reach a log:
// silenceper's error texts and url.Error carry the whole request URL.
var secretParams = regexp.MustCompile(`((?:^|[?&\s"])(?:access_token|secret|corpsecret|js_code|code)=)[^&\s"']*`)

// Redact hides tokens, secrets and one-time codes in a URL or error text.
func Redact(s string) string {
	return secretParams.ReplaceAllString(s, "${1}REDACTED")
}

// redacted keeps a cause reachable for errors.Is/As while its text, which
// may contain the request URL, is redacted.
type redacted struct{ err error }

func (r redacted) Error() string { return Redact(r.err.Error()) }
func (r redacted) Unwrap() error { return r.err }

// Wrap turns the error of an API call into a rental.Error whose kind and
// user message follow the errcode; the *Error stays reachable with
// errors.As. nil stays nil, and a rental.Error passes unchanged.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *rental.Error
	if errors.As(err, &re) {
		return err
	}
	err = FromSDK(op, err)
	var e *Error
	errors.As(err, &e)
	kind, msg := Classify(e)
	return rental.Wrap(op, kind, msg, err)
}

// Classify maps an API failure to a rental kind and a message safe to show.
func Classify(e *Error) (rental.Kind, string) {
	service := "微信"
	if strings.HasPrefix(e.Op, "wecom.") {
		service = "企业微信"
	}
	switch {
	case e.Retryable():
		return rental.KindUnavailable, service + "服务繁忙，请稍后再试"
	case e.IsWindowClosed():
		return rental.KindConflict, "已超过 48 小时客服回复时限，需等客户再次发消息"
	case e.Code == CodeReplyCount:
		return rental.KindConflict, "客服消息已达条数上限，需等客户再次发消息"
	case e.Code == CodeUserRefused:
		return rental.KindForbidden, "用户未订阅该消息，或订阅次数已用完"
	}
	switch e.Code {
	case CodeInvalidCode, CodeCodeUsed:
		return rental.KindInvalid, "授权码无效、已使用或已过期，请重新授权"
	case CodeInvalidOpenID, CodeAllInvalid:
		return rental.KindInvalid, "接收人无效"
	case CodeInvalidMediaID:
		return rental.KindNotFound, "媒体文件不存在或已过期"
	case 40004, 40005, 40006, 40008, 40009, 40035, 40037, 40058, 41005, 41030, 44004, 45002, 47001, 47003:
		return rental.KindInvalid, "内容或参数不符合" + service + "的要求"
	}
	return rental.KindUpstream, service + "接口调用失败"
}
