package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// This file is the only place that turns errors into HTTP responses.
// Handlers return errors; nothing else writes an error body.

// statusByKind maps each domain error kind to its HTTP status.
var statusByKind = map[rental.Kind]int{
	rental.KindInvalid:      fiber.StatusBadRequest,
	rental.KindUnauthorized: fiber.StatusUnauthorized,
	rental.KindForbidden:    fiber.StatusForbidden,
	rental.KindNotFound:     fiber.StatusNotFound,
	rental.KindConflict:     fiber.StatusConflict,
	rental.KindRateLimited:  fiber.StatusTooManyRequests,
	rental.KindUnavailable:  fiber.StatusServiceUnavailable,
	rental.KindUpstream:     fiber.StatusBadGateway,
	rental.KindInternal:     fiber.StatusInternalServerError,
}

// genericMessage is shown when an error carries no user-safe message.
var genericMessage = map[rental.Kind]string{
	rental.KindInvalid:      "请求无效 (invalid request)",
	rental.KindUnauthorized: "请先登录 (authentication required)",
	rental.KindForbidden:    "没有权限 (not allowed for your role)",
	rental.KindNotFound:     "找不到 (not found)",
	rental.KindConflict:     "当前状态不允许此操作 (conflicts with the current state)",
	rental.KindRateLimited:  "请求太频繁，请稍后再试 (too many requests, try again later)",
	rental.KindUnavailable:  "服务暂时不可用，请稍后再试 (temporarily unavailable, try again later)",
	rental.KindUpstream:     "微信服务暂时不可用，请稍后再试 (WeChat did not answer, try again later)",
	rental.KindInternal:     "服务器出错了，我们会尽快处理 (internal error)",
}

// mediaKinds maps the video rooms' error codes to kinds (media does not
// import rental; this table is the mapping its comments ask for).
var mediaKinds = map[media.Code]rental.Kind{
	media.CodeInvalid: rental.KindInvalid, media.CodeRoomFull: rental.KindConflict, media.CodeTooManyRooms: rental.KindUnavailable,
	media.CodeRoomMismatch: rental.KindConflict, media.CodeRoomNotFound: rental.KindNotFound, media.CodeVideoNotAllowed: rental.KindInvalid,
	media.CodeSessionClosed: rental.KindConflict, media.CodeClosed: rental.KindUnavailable, media.CodeInternal: rental.KindInternal,
}

// fiberCodes covers errors fiber and fasthttp raise themselves.
var fiberCodes = map[int]struct{ code, message string }{
	fiber.StatusBadRequest:                  {"invalid", "请求格式错误 (malformed request)"},
	fiber.StatusNotFound:                    {"not_found", "请求的地址不存在 (no such route)"},
	fiber.StatusMethodNotAllowed:            {"method_not_allowed", "此地址不支持该请求方法 (method not allowed)"},
	fiber.StatusRequestTimeout:              {"timeout", "请求超时 (request timed out)"},
	fiber.StatusRequestEntityTooLarge:       {"payload_too_large", "请求内容过大 (request body too large)"},
	fiber.StatusRequestHeaderFieldsTooLarge: {"headers_too_large", "请求头过大 (request headers too large)"},
	fiber.StatusTooManyRequests:             {"rate_limited", "请求太频繁，请稍后再试 (too many requests)"},
	fiber.StatusUnsupportedMediaType:        {"unsupported_media_type", "不支持的内容类型 (unsupported content type)"},
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Rows lists, for a refused import, every bad row with its line.
	Rows []store.RowError `json:"rows,omitempty"`
}

// classify decides status, code and user-facing message for err.
func classify(err error) (status int, code, message string) {
	var re *rental.Error
	if errors.As(err, &re) {
		kind := rental.ErrorKind(err)
		status = statusByKind[kind]
		if status == 0 {
			status, kind = fiber.StatusInternalServerError, rental.KindInternal
		}
		message = rental.ErrorMessage(err)
		if message == "" || kind == rental.KindInternal {
			// An internal error's message may describe internals: never show it.
			message = genericMessage[kind]
		}
		return status, string(kind), message
	}
	var me *media.Error
	if errors.As(err, &me) {
		kind := mediaKinds[me.Code]
		if kind == "" {
			kind = rental.KindInternal
		}
		msg := me.Message
		if msg == "" || kind == rental.KindInternal {
			msg = genericMessage[kind]
		}
		return statusByKind[kind], string(kind), msg
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		if known, ok := fiberCodes[fe.Code]; ok {
			return fe.Code, known.code, known.message
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return fe.Code, "invalid", genericMessage[rental.KindInvalid]
		}
	}
	return fiber.StatusInternalServerError, string(rental.KindInternal), genericMessage[rental.KindInternal]
}

// writeError answers the request with the JSON error for err and remembers
// err so the access log can record it once.
func writeError(c *fiber.Ctx, err error) {
	status, code, message := classify(err)
	detail := errorDetail{Code: code, Message: message}
	var ie *store.ImportErrors
	if errors.As(err, &ie) {
		status, detail.Code = fiber.StatusBadRequest, "invalid_rows"
		detail.Message = fmt.Sprintf("%d 行有错误，未导入任何数据 (%d rows have errors; nothing was imported)", len(ie.Rows), len(ie.Rows))
		detail.Rows = ie.Rows
	}
	c.Locals(localsError, err)
	c.Status(status)
	if jerr := c.JSON(errorBody{Error: detail}); jerr != nil {
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		c.SendString(code) //nolint:errcheck // nothing left to do if even this fails
	}
}

// panicError carries a recovered panic with the stack where it happened.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// recoverPanics turns a panic in a handler into an internal error, so it is
// answered with the JSON 500 and logged once, with its stack, by the access log.
func recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			err = &rental.Error{Op: "gateway.handler", Kind: rental.KindInternal, Err: &panicError{value: r, stack: buf}}
		}
	}()
	return c.Next()
}

// logAttrsForError adds what a log line needs to understand err.
func logAttrsForError(err error) []slog.Attr {
	attrs := []slog.Attr{slog.String("error", err.Error())}
	var p *panicError
	if errors.As(err, &p) {
		attrs = append(attrs, slog.String("stack", string(p.stack)))
	}
	return attrs
}
