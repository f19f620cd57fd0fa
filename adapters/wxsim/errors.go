package wxsim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes the simulator answers with (WECHAT-PROTOCOLS.md §0).
const (
	errSystemBusy         = -1
	errInvalidCredential  = 40001
	errInvalidGrantType   = 40002
	errInvalidOpenID      = 40003
	errInvalidMediaType   = 40004
	errInvalidFileType    = 40005
	errInvalidFileSize    = 40006
	errInvalidMediaID     = 40007
	errInvalidMsgType     = 40008
	errInvalidImageSize   = 40009
	errInvalidAppID       = 40013
	errInvalidToken       = 40014
	errInvalidCode        = 40029
	errInvalidParam       = 40035
	errInvalidTemplateID  = 40037
	errInvalidAgentID     = 40056
	errInvalidParamWeCom  = 40058
	errInvalidAppSecret   = 40125
	errCodeUsed           = 40163
	errMissingToken       = 41001
	errMissingAppID       = 41002
	errMissingSecret      = 41004
	errMissingMedia       = 41005
	errTokenExpired       = 42001
	errRequireGET         = 43001
	errRequirePOST        = 43002
	errUserRefused        = 43101
	errEmptyContent       = 44004
	errContentTooLong     = 45002
	errDailyQuota         = 45009
	errMinuteQuota        = 45011
	errReplyTimeLimit     = 45015
	errReplyCountLimit    = 45047
	errDataFormat         = 47001
	errTemplateData       = 47003
	errAPIUnauthorized    = 48001
	errAllInvalidReceiver = 81013
)

// wxError is an errcode answer. Handlers return it; serveAPI writes it as
// HTTP 200 + {"errcode","errmsg"} because the real servers (and silenceper,
// which treats any other status as a transport failure) work that way.
type wxError struct {
	Code int
	Msg  string
}

func (e *wxError) Error() string { return fmt.Sprintf("errcode=%d errmsg=%s", e.Code, e.Msg) }

func wxErr(code int, format string, args ...any) *wxError {
	return &wxError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errBody is the JSON shape of every errcode answer.
type errBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// okBody is embedded in successful answers that carry errcode 0.
func okBody() errBody { return errBody{ErrCode: 0, ErrMsg: "ok"} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeWxError answers like api.weixin.qq.com does. The "rid" suffix mirrors
// the request id real servers append to errmsg; clients must not parse errmsg.
func writeWxError(w http.ResponseWriter, e *wxError, rid string) {
	msg := e.Msg
	if rid != "" {
		msg += " rid: " + rid
	}
	writeJSON(w, http.StatusOK, errBody{ErrCode: e.Code, ErrMsg: msg})
}
