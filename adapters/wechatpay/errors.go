package wechatpay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrSignature is wrapped by every failure to authenticate something that
// claims to come from WeChat Pay: a missing Wechatpay-* header, an unknown
// serial, a timestamp outside the allowed skew, a signature probe or a
// signature that does not verify. A notification handler answers it with 401
// (WeChat Pay then retries with a correct signature); an API call that gets it
// must not trust the response.
var ErrSignature = errors.New("wechatpay: signature verification failed")

// ErrUndecryptable is wrapped when a notification is authentic (its signature
// verified) but its envelope or encrypted resource cannot be parsed or
// decrypted — typically a wrong APIv3 key. A notification handler answers 400.
var ErrUndecryptable = errors.New("wechatpay: notification could not be decrypted")

// APIError is a verified non-2xx answer from WeChat Pay:
// `{"code":"PARAM_ERROR","message":"…","detail":{…}}`. Key decisions on Status
// first and Code second: code spellings vary between endpoints.
type APIError struct {
	Status    int          // HTTP status
	Code      string       // e.g. PARAM_ERROR, ORDER_NOT_EXIST, SIGN_ERROR
	Message   string       // human-readable, usually Chinese
	Detail    *ErrorDetail // optional field-level detail
	RequestID string       // Request-ID response header, for WeChat Pay support
}

// ErrorDetail is the optional "detail" object of an error answer.
type ErrorDetail struct {
	Field    string          `json:"field,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Issue    string          `json:"issue,omitempty"`
	Location string          `json:"location,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wechatpay: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	if d := e.Detail; d != nil && (d.Field != "" || d.Issue != "") {
		fmt.Fprintf(&b, " (field %q: %s)", d.Field, d.Issue)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Retryable reports whether the same request may succeed later unchanged:
// 429 FREQUENCY_LIMITED and 5xx SYSTEM_ERROR. WeChat Pay asks that such
// retries reuse the same parameters (out_trade_no, out_refund_no), which
// makes them idempotent.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// parseAPIError builds the APIError for a verified non-2xx answer. A body that
// is not the documented JSON still yields an APIError so the status is kept.
func parseAPIError(status int, requestID string, body []byte) *APIError {
	e := &APIError{Status: status, RequestID: requestID}
	var wire struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		e.Code = "UNPARSEABLE"
		e.Message = fmt.Sprintf("error body is not JSON (%d bytes)", len(body))
		return e
	}
	e.Code, e.Message = wire.Code, wire.Message
	if len(wire.Detail) > 0 && string(wire.Detail) != "null" {
		var d ErrorDetail
		// The detail's shape varies between endpoints; a detail that does not
		// fit is dropped rather than hiding the code and message.
		if json.Unmarshal(wire.Detail, &d) == nil {
			e.Detail = &d
		}
	}
	return e
}
