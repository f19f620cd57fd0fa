package wxsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"time"
)

// The control API (/sim/api/…) lets a test, the CLI or the /sim page act as
// the customers and staff and inspect what reached them. It is JSON in and
// out; errors are {"error":{"code","message"}} like the gateway's.

type ctlError struct {
	status int
	code   string
	msg    string
}

func (e *ctlError) Error() string { return e.msg }

func badRequest(msg string) error { return &ctlError{http.StatusBadRequest, "invalid", msg} }
func notFound(msg string) error   { return &ctlError{http.StatusNotFound, "not_found", msg} }

type ctlHandler func(w http.ResponseWriter, r *http.Request) error

func (s *Simulator) ctl(pattern string, h ctlHandler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		ce := &ctlError{http.StatusBadRequest, "invalid", err.Error()}
		errors.As(err, &ce)
		writeJSON(w, ce.status, map[string]any{"error": map[string]string{"code": ce.code, "message": ce.msg}})
	})
}

func (s *Simulator) controlRoutes() {
	s.mux.HandleFunc("GET /sim", s.servePage)
	s.mux.HandleFunc("GET /sim/{$}", s.servePage)
	s.ctl("GET /sim/api/state", s.ctlState)
	s.ctl("GET /sim/api/customers", s.ctlCustomers)
	s.ctl("POST /sim/api/customers", s.ctlAddCustomer)
	s.ctl("GET /sim/api/customers/{openid}", s.ctlCustomer)
	s.ctl("GET /sim/api/customers/{openid}/deliveries", s.ctlDeliveries)
	s.ctl("POST /sim/api/customers/{openid}/login", s.ctlLogin)
	s.ctl("POST /sim/api/customers/{openid}/phone-code", s.ctlPhoneCode)
	s.ctl("POST /sim/api/customers/{openid}/subscribe-grants", s.ctlGrant)
	s.ctl("POST /sim/api/customers/{openid}/messages", s.ctlCustomerSends)
	s.ctl("GET /sim/api/staff", s.ctlStaff)
	s.ctl("GET /sim/api/staff/{userid}/inbox", s.ctlInbox)
	s.ctl("POST /sim/api/staff/{userid}/messages", s.ctlStaffSends)
	s.ctl("POST /sim/api/staff/{userid}/oauth-code", s.ctlOAuthCode)
	s.ctl("POST /sim/api/tokens/invalidate", s.ctlInvalidate)
	s.ctl("GET /sim/api/clock", s.ctlClock)
	s.ctl("POST /sim/api/clock/advance", s.ctlAdvance)
	s.ctl("GET /sim/api/pushes", s.ctlPushes)
	s.ctl("GET /sim/api/app-sends", s.ctlAppSends)
	s.ctl("GET /sim/api/faults", s.ctlFaults)
	s.ctl("PUT /sim/api/faults", s.ctlSetFault)
	s.ctl("DELETE /sim/api/faults", s.ctlClearFault)
	s.ctl("PUT /sim/api/settings", s.ctlSettings)
	s.ctl("POST /sim/api/verify/wechat", s.ctlVerifyWeChat)
	s.ctl("POST /sim/api/verify/wecom", s.ctlVerifyWeCom)
	s.ctl("GET /sim/api/media/{id}", s.ctlMedia)
	s.ctl("GET /sim/api/payments", s.ctlPayments)
	s.ctl("GET /sim/api/sms", s.ctlSMS)
	s.kfControlRoutes()
}

func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 25<<20))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) { // an empty body means "no options"
		return badRequest("body: " + err.Error())
	}
	return nil
}

func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Simulator) ctlState(w http.ResponseWriter, r *http.Request) error {
	pushURL, wecomURL, mode, format := s.PushTargets()
	templates := make([]map[string]any, 0, len(s.cfg.SubscribeTemplates))
	for id, kws := range s.cfg.SubscribeTemplates {
		templates = append(templates, map[string]any{"template_id": id, "keywords": kws})
	}
	sort.Slice(templates, func(i, j int) bool {
		return templates[i]["template_id"].(string) < templates[j]["template_id"].(string)
	})
	return ok(w, map[string]any{
		"now":                s.clock.Now(),
		"app_id":             s.cfg.AppID,
		"original_id":        s.cfg.OriginalID,
		"corp_id":            s.cfg.CorpID,
		"agent_id":           s.cfg.AgentID,
		"push_url":           pushURL,
		"wecom_callback_url": wecomURL,
		"push_mode":          mode,
		"push_format":        format,
		"wechat_base":        s.WeChatBase(),
		"wecom_base":         s.WeComBase(),
		"pay_base":           s.PayBase(),
		"staff":              s.StaffUserIDs(),
		"templates":          templates,
	})
}

func (s *Simulator) ctlCustomers(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.Customers())
}

func (s *Simulator) ctlAddCustomer(w http.ResponseWriter, r *http.Request) error {
	var c Customer
	if err := readBody(r, &c); err != nil {
		return err
	}
	return ok(w, s.AddCustomer(c))
}

func (s *Simulator) ctlCustomer(w http.ResponseWriter, r *http.Request) error {
	c, found := s.Customer(r.PathValue("openid"))
	if !found {
		return notFound("unknown customer")
	}
	return ok(w, c)
}

func (s *Simulator) ctlDeliveries(w http.ResponseWriter, r *http.Request) error {
	if _, found := s.Customer(r.PathValue("openid")); !found {
		return notFound("unknown customer")
	}
	d := s.Delivered(r.PathValue("openid"))
	if d == nil {
		d = []CustomerDelivery{}
	}
	return ok(w, d)
}

func (s *Simulator) ctlLogin(w http.ResponseWriter, r *http.Request) error {
	return ok(w, map[string]string{"js_code": s.Login(r.PathValue("openid"))})
}

func (s *Simulator) ctlPhoneCode(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Phone string `json:"phone"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	code, err := s.PhoneCode(r.PathValue("openid"), req.Phone)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, map[string]string{"code": code})
}

func (s *Simulator) ctlGrant(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		TemplateID string `json:"template_id"`
		N          int    `json:"n"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	if req.N == 0 {
		req.N = 1
	}
	if err := s.GrantSubscribe(r.PathValue("openid"), req.TemplateID, req.N); err != nil {
		return badRequest(err.Error())
	}
	c, _ := s.Customer(r.PathValue("openid"))
	return ok(w, c)
}

func (s *Simulator) ctlCustomerSends(w http.ResponseWriter, r *http.Request) error {
	var m Message
	if err := readBody(r, &m); err != nil {
		return err
	}
	p, err := s.CustomerSends(r.Context(), r.PathValue("openid"), m)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}

func (s *Simulator) ctlStaff(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.StaffUserIDs())
}

func (s *Simulator) ctlInbox(w http.ResponseWriter, r *http.Request) error {
	inbox := s.StaffInbox(r.PathValue("userid"))
	if inbox == nil {
		s.mu.Lock()
		_, err := s.staffLocked(r.PathValue("userid"))
		s.mu.Unlock()
		if err != nil {
			return notFound(err.Error())
		}
		inbox = []WeComDelivery{}
	}
	return ok(w, inbox)
}

func (s *Simulator) ctlStaffSends(w http.ResponseWriter, r *http.Request) error {
	var m Message
	if err := readBody(r, &m); err != nil {
		return err
	}
	p, err := s.StaffSends(r.Context(), r.PathValue("userid"), m)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}

func (s *Simulator) ctlOAuthCode(w http.ResponseWriter, r *http.Request) error {
	code, err := s.OAuthCode(r.PathValue("userid"))
	if err != nil {
		return notFound(err.Error())
	}
	return ok(w, map[string]string{"code": code})
}

func (s *Simulator) ctlInvalidate(w http.ResponseWriter, r *http.Request) error {
	s.InvalidateTokens()
	return ok(w, map[string]bool{"invalidated": true})
}

func (s *Simulator) ctlClock(w http.ResponseWriter, r *http.Request) error {
	return ok(w, map[string]time.Time{"now": s.clock.Now()})
}

func (s *Simulator) ctlAdvance(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Duration string `json:"duration"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 {
		return badRequest("duration must be a positive Go duration such as \"90m\"")
	}
	s.Advance(d)
	return ok(w, map[string]time.Time{"now": s.clock.Now()})
}

func (s *Simulator) ctlPushes(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.Pushes())
}

func (s *Simulator) ctlAppSends(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.AppSends())
}

// faultJSON is Fault with a readable latency ("250ms").
type faultJSON struct {
	Latency     string  `json:"latency,omitempty"`
	HTTPStatus  int     `json:"http_status,omitempty"`
	Errcode     int     `json:"errcode,omitempty"`
	ExpireToken bool    `json:"expire_token,omitempty"`
	DropPush    bool    `json:"drop_push,omitempty"`
	Probability float64 `json:"probability,omitempty"`
	Times       int     `json:"times,omitempty"`
}

func (s *Simulator) ctlFaults(w http.ResponseWriter, r *http.Request) error {
	out := map[string]faultJSON{}
	for k, f := range s.faults.List() {
		fj := faultJSON{HTTPStatus: f.HTTPStatus, Errcode: f.Errcode, ExpireToken: f.ExpireToken,
			DropPush: f.DropPush, Probability: f.Probability, Times: f.Times}
		if f.Latency > 0 {
			fj.Latency = f.Latency.String()
		}
		out[k] = fj
	}
	return ok(w, out)
}

func (s *Simulator) ctlSetFault(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Endpoint string    `json:"endpoint"`
		Fault    faultJSON `json:"fault"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	if req.Endpoint == "" {
		return badRequest("endpoint is required")
	}
	f := Fault{HTTPStatus: req.Fault.HTTPStatus, Errcode: req.Fault.Errcode, ExpireToken: req.Fault.ExpireToken,
		DropPush: req.Fault.DropPush, Probability: req.Fault.Probability, Times: req.Fault.Times}
	if req.Fault.Latency != "" {
		d, err := time.ParseDuration(req.Fault.Latency)
		if err != nil {
			return badRequest("fault.latency: " + err.Error())
		}
		f.Latency = d
	}
	if f.Probability < 0 || f.Probability > 1 || f.Times < 0 {
		return badRequest("fault.probability must be in [0,1] and fault.times ≥ 0")
	}
	s.faults.Set(req.Endpoint, f)
	return s.ctlFaults(w, r)
}

func (s *Simulator) ctlClearFault(w http.ResponseWriter, r *http.Request) error {
	s.faults.Clear(r.URL.Query().Get("endpoint"))
	return s.ctlFaults(w, r)
}

func (s *Simulator) ctlSettings(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		PushURL          *string `json:"push_url"`
		WeComCallbackURL *string `json:"wecom_callback_url"`
		PushMode         string  `json:"push_mode"`
		PushFormat       string  `json:"push_format"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	if err := s.SetPushMode(req.PushMode, req.PushFormat); err != nil {
		return badRequest(err.Error())
	}
	if req.PushURL != nil {
		s.SetPushURL(*req.PushURL)
	}
	if req.WeComCallbackURL != nil {
		s.SetWeComCallbackURL(*req.WeComCallbackURL)
	}
	return s.ctlState(w, r)
}

func (s *Simulator) ctlVerifyWeChat(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.VerifyWeChatURL(r.Context()))
}

func (s *Simulator) ctlVerifyWeCom(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.VerifyWeComURL(r.Context()))
}

// ctlMedia serves media bytes without a token and regardless of expiry: it
// stands in for the CDN behind PicUrl and lets tests and the page show media.
func (s *Simulator) ctlMedia(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	m, found := s.media[r.PathValue("id")]
	s.mu.Unlock()
	if !found {
		return notFound("unknown media")
	}
	serveMedia(w, r, m)
	return nil
}

func (s *Simulator) ctlPayments(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	src := s.paymentsSrc
	s.mu.Unlock()
	if src == nil {
		return ok(w, []any{})
	}
	return ok(w, src())
}

func (s *Simulator) kfControlRoutes() {
	s.ctl("GET /sim/api/kf", s.ctlKF)
	s.ctl("POST /sim/api/kf/empty-page", s.ctlKFEmptyPage)
	s.ctl("POST /sim/api/kf/servicers/{userid}/status", s.ctlKFServicerStatus)
	s.ctl("GET /sim/api/kf/{open_kfid}/customers/{external_userid}", s.ctlKFSession)
	s.ctl("POST /sim/api/kf/{open_kfid}/customers/{external_userid}/messages", s.ctlKFCustomerSends)
	s.ctl("POST /sim/api/kf/{open_kfid}/customers/{external_userid}/enter", s.ctlKFEnter)
	s.ctl("POST /sim/api/kf/{open_kfid}/customers/{external_userid}/servicer-messages", s.ctlKFServicerSends)
}

func (s *Simulator) ctlKF(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	accounts := make([]KFAccount, 0, len(s.kf.order))
	for _, id := range s.kf.order {
		accounts = append(accounts, s.kf.accounts[id])
	}
	type sessionRef struct {
		OpenKfID       string `json:"open_kfid"`
		ExternalUserID string `json:"external_userid"`
	}
	sessions := []sessionRef{}
	for _, sess := range s.kf.sessions {
		sessions = append(sessions, sessionRef{sess.openKfID, sess.externalUserID})
	}
	s.mu.Unlock()
	sort.Slice(sessions, func(i, j int) bool {
		return sessions[i].OpenKfID+sessions[i].ExternalUserID < sessions[j].OpenKfID+sessions[j].ExternalUserID
	})
	return ok(w, map[string]any{"accounts": accounts, "sessions": sessions})
}

func (s *Simulator) ctlKFEmptyPage(w http.ResponseWriter, r *http.Request) error {
	s.KFInjectEmptyPage()
	return ok(w, map[string]bool{"injected": true})
}

func (s *Simulator) ctlKFServicerStatus(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Receiving bool `json:"receiving"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	p, err := s.KFSetServicerStatus(r.Context(), r.PathValue("userid"), req.Receiving)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}

func (s *Simulator) ctlKFSession(w http.ResponseWriter, r *http.Request) error {
	info, found := s.KFSession(r.PathValue("open_kfid"), r.PathValue("external_userid"))
	if !found {
		return notFound("unknown kf session")
	}
	return ok(w, info)
}

func (s *Simulator) ctlKFCustomerSends(w http.ResponseWriter, r *http.Request) error {
	var m Message
	if err := readBody(r, &m); err != nil {
		return err
	}
	p, err := s.KFCustomerSends(r.Context(), r.PathValue("open_kfid"), r.PathValue("external_userid"), m)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}

func (s *Simulator) ctlKFEnter(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Scene      string `json:"scene"`
		SceneParam string `json:"scene_param"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	p, err := s.KFEnterSession(r.Context(), r.PathValue("open_kfid"), r.PathValue("external_userid"), req.Scene, req.SceneParam)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}

func (s *Simulator) ctlKFServicerSends(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		UserID  string `json:"userid"`
		Content string `json:"content"`
	}
	if err := readBody(r, &req); err != nil {
		return err
	}
	p, err := s.KFServicerSends(r.Context(), req.UserID, r.PathValue("open_kfid"), r.PathValue("external_userid"), req.Content)
	if err != nil {
		return badRequest(err.Error())
	}
	return ok(w, p)
}
