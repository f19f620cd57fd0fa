package wxsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Endpoint names, usable as fault and quota keys.
const (
	EndpointToken         = PrefixWeChat + "/cgi-bin/token"
	EndpointStableToken   = PrefixWeChat + "/cgi-bin/stable_token"
	EndpointCode2Session  = PrefixWeChat + "/sns/jscode2session"
	EndpointPhoneNumber   = PrefixWeChat + "/wxa/business/getuserphonenumber"
	EndpointCustomSend    = PrefixWeChat + "/cgi-bin/message/custom/send"
	EndpointCustomTyping  = PrefixWeChat + "/cgi-bin/message/custom/typing"
	EndpointSubscribeSend = PrefixWeChat + "/cgi-bin/message/subscribe/send"
	EndpointMediaUpload   = PrefixWeChat + "/cgi-bin/media/upload"
	EndpointMediaGet      = PrefixWeChat + "/cgi-bin/media/get"

	EndpointWeComToken       = PrefixWeCom + "/cgi-bin/gettoken"
	EndpointWeComSend        = PrefixWeCom + "/cgi-bin/message/send"
	EndpointWeComMediaUpload = PrefixWeCom + "/cgi-bin/media/upload"
	EndpointWeComMediaGet    = PrefixWeCom + "/cgi-bin/media/get"
	EndpointWeComUserInfo    = PrefixWeCom + "/cgi-bin/auth/getuserinfo"
	EndpointWeComUserInfoOld = PrefixWeCom + "/cgi-bin/user/getuserinfo"

	EndpointKFSyncMsg        = PrefixWeCom + "/cgi-bin/kf/sync_msg"
	EndpointKFSendMsg        = PrefixWeCom + "/cgi-bin/kf/send_msg"
	EndpointKFSendMsgOnEvent = PrefixWeCom + "/cgi-bin/kf/send_msg_on_event"
	EndpointKFStateGet       = PrefixWeCom + "/cgi-bin/kf/service_state/get"
	EndpointKFStateTrans     = PrefixWeCom + "/cgi-bin/kf/service_state/trans"
	EndpointKFAccountList    = PrefixWeCom + "/cgi-bin/kf/account/list"
	EndpointKFCustomerGet    = PrefixWeCom + "/cgi-bin/kf/customer/batchget"
)

// call is what the common checks learned about a request.
type call struct {
	name  string
	host  string
	token string
	now   time.Time
	rid   string
}

type apiHandler func(w http.ResponseWriter, r *http.Request, c *call) error

type endpointSpec struct {
	name      string
	host      string
	method    string
	needToken bool
	handle    apiHandler
}

func (s *Simulator) routes() {
	specs := []endpointSpec{
		{EndpointToken, hostWeChat, http.MethodGet, false, s.handleToken},
		{EndpointStableToken, hostWeChat, http.MethodPost, false, s.handleStableToken},
		{EndpointCode2Session, hostWeChat, http.MethodGet, false, s.handleCode2Session},
		{EndpointPhoneNumber, hostWeChat, http.MethodPost, true, s.handlePhoneNumber},
		{EndpointCustomSend, hostWeChat, http.MethodPost, true, s.handleCustomSend},
		{EndpointCustomTyping, hostWeChat, http.MethodPost, true, s.handleCustomTyping},
		{EndpointSubscribeSend, hostWeChat, http.MethodPost, true, s.handleSubscribeSend},
		{EndpointMediaUpload, hostWeChat, http.MethodPost, true, s.handleMediaUpload},
		{EndpointMediaGet, hostWeChat, http.MethodGet, true, s.handleMediaGet},

		{EndpointWeComToken, hostWeCom, http.MethodGet, false, s.handleWeComToken},
		{EndpointWeComSend, hostWeCom, http.MethodPost, true, s.handleWeComSend},
		{EndpointWeComMediaUpload, hostWeCom, http.MethodPost, true, s.handleMediaUpload},
		{EndpointWeComMediaGet, hostWeCom, http.MethodGet, true, s.handleMediaGet},
		{EndpointWeComUserInfo, hostWeCom, http.MethodGet, true, s.handleWeComUserInfo},
		{EndpointWeComUserInfoOld, hostWeCom, http.MethodGet, true, s.handleWeComUserInfoOld},

		{EndpointKFSyncMsg, hostWeCom, http.MethodPost, true, s.handleKFSyncMsg},
		{EndpointKFSendMsg, hostWeCom, http.MethodPost, true, s.handleKFSendMsg},
		{EndpointKFSendMsgOnEvent, hostWeCom, http.MethodPost, true, s.handleKFSendMsgOnEvent},
		{EndpointKFStateGet, hostWeCom, http.MethodPost, true, s.handleKFStateGet},
		{EndpointKFStateTrans, hostWeCom, http.MethodPost, true, s.handleKFStateTrans},
		{EndpointKFAccountList, hostWeCom, "", true, s.handleKFAccountList}, // GET (old) or POST with paging
		{EndpointKFCustomerGet, hostWeCom, http.MethodPost, true, s.handleKFCustomerBatchGet},
	}
	for _, sp := range specs {
		s.mux.HandleFunc(sp.name, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, sp) })
	}
	s.mux.HandleFunc(PrefixWeChat+"/", s.notSimulated)
	s.mux.HandleFunc(PrefixWeCom+"/", s.notSimulated)
	s.mux.HandleFunc(PrefixPay+"/", s.servePay)
	s.controlRoutes()
	s.oauthRoutes()
}

// notSimulated answers paths the simulator does not know with a 404 rather
// than a plausible errcode, so a gateway calling an unsimulated API fails loudly.
func (s *Simulator) notSimulated(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("unsimulated API called", "path", r.URL.Path)
	writeJSON(w, http.StatusNotFound, errBody{ErrCode: errAPIUnauthorized, ErrMsg: "wxsim: not simulated: " + r.URL.Path})
}

// serveAPI runs the checks every real API performs, in the real order:
// method, (injected faults), access token, quota, then the handler.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request, sp endpointSpec) {
	c := &call{name: sp.name, host: sp.host, rid: requestID()}
	err := s.precheck(w, r, sp, c)
	if err == nil {
		err = sp.handle(w, r, c)
	}
	var we *wxError
	switch {
	case err == nil:
		s.log.Debug("api call", "endpoint", sp.name, "errcode", 0)
	case errors.Is(err, errAnswered):
		s.log.Debug("api call answered by fault", "endpoint", sp.name)
	case errors.As(err, &we):
		s.log.Debug("api call", "endpoint", sp.name, "errcode", we.Code, "errmsg", we.Msg)
		writeWxError(w, we, c.rid)
	default:
		s.log.Error("api call failed", "endpoint", sp.name, "err", err)
		writeWxError(w, wxErr(errSystemBusy, "system error"), c.rid)
	}
}

// errAnswered means the response was already written (an HTTP-status fault).
var errAnswered = errors.New("already answered")

func (s *Simulator) precheck(w http.ResponseWriter, r *http.Request, sp endpointSpec, c *call) error {
	if sp.method != "" && r.Method != sp.method && !(sp.method == http.MethodGet && r.Method == http.MethodHead) {
		if sp.method == http.MethodPost {
			return wxErr(errRequirePOST, "require POST method")
		}
		return wxErr(errRequireGET, "require GET method")
	}
	expireToken := false
	if f, ok := s.faults.fire(sp.name); ok {
		if err := sleepCtx(r, f.Latency); err != nil {
			return errAnswered // the client went away; nothing to answer
		}
		switch {
		case f.HTTPStatus != 0:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.HTTPStatus)
			_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", f.HTTPStatus, http.StatusText(f.HTTPStatus))
			return errAnswered
		case f.Errcode != 0:
			return wxErr(f.Errcode, "injected fault")
		}
		expireToken = f.ExpireToken
	}
	c.token = r.URL.Query().Get("access_token")
	s.mu.Lock()
	defer s.mu.Unlock()
	c.now = s.clock.Now()
	if sp.needToken {
		if expireToken {
			s.tokens.expire(c.token, c.now)
		}
		if err := s.tokens.check(sp.host, c.token, c.now); err != nil {
			return err
		}
	}
	return s.takeQuotaLocked(sp.name, sp.host, c.now)
}

func sleepCtx(r *http.Request, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.Context().Done():
		return r.Context().Err()
	}
}

// decodeJSON reads a POST body the way the real servers do: a body that is
// not JSON is errcode 47001.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return wxErr(errDataFormat, "data format error: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return wxErr(errDataFormat, "data format error: %v", err)
	}
	return nil
}

// quotaCounter counts calls of one endpoint in the current minute and day.
type quotaCounter struct {
	minute string
	perMin int
	day    string
	perDay int
}

// takeQuotaLocked enforces rule S3: mini-program minute → 45011, day → 45009;
// WeCom answers 45009 for both.
func (s *Simulator) takeQuotaLocked(name, host string, now time.Time) error {
	q, ok := s.limits[name]
	if !ok || (q.PerMinute == 0 && q.PerDay == 0) {
		return nil
	}
	qc := s.quotas[name]
	if qc == nil {
		qc = &quotaCounter{}
		s.quotas[name] = qc
	}
	minute, day := now.In(shanghai).Format("2006-01-02T15:04"), dayKey(now)
	if qc.minute != minute {
		qc.minute, qc.perMin = minute, 0
	}
	if qc.day != day {
		qc.day, qc.perDay = day, 0
	}
	if q.PerDay > 0 && qc.perDay >= q.PerDay {
		return wxErr(errDailyQuota, "reach max api daily quota limit")
	}
	if q.PerMinute > 0 && qc.perMin >= q.PerMinute {
		if host == hostWeCom {
			return wxErr(errDailyQuota, "api freq out of limit")
		}
		return wxErr(errMinuteQuota, "reach max api minute quota limit, please retry next minute")
	}
	qc.perMin++
	qc.perDay++
	return nil
}
