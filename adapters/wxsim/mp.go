package wxsim

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

const tokenChars = alnum + "_"

// mintTokenValue imitates real tokens: long, opaque, and stored by clients in
// ≥512-char columns.
func mintTokenValue(prefix string) string { return prefix + randomString(134, tokenChars) }

type tokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func secondsLeft(t *accessToken, now time.Time) int64 {
	return int64(t.expiresAt.Sub(now) / time.Second)
}

// checkAppCredentials validates appid/secret of the mini-program (S1).
func (s *Simulator) checkAppCredentials(appID, secret string) error {
	switch {
	case appID == "":
		return wxErr(errMissingAppID, "appid missing")
	case secret == "":
		return wxErr(errMissingSecret, "appsecret missing")
	case appID != s.cfg.AppID:
		return wxErr(errInvalidAppID, "invalid appid")
	case secret != s.cfg.AppSecret:
		return wxErr(s.cfg.Rules.BadSecretCode, "invalid appsecret")
	}
	return nil
}

// handleToken: GET /cgi-bin/token. Every call mints a new token; the
// previous one keeps working for TokenOverlap — the trap that makes two
// processes fetching tokens independently invalidate each other.
func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		return wxErr(errInvalidGrantType, "invalid grant_type")
	}
	if err := s.checkAppCredentials(q.Get("appid"), q.Get("secret")); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.tokens.latest[tokenDefault]; prev != nil && prev.usable(c.now) {
		prev.supersededUntil = c.now.Add(s.cfg.Rules.TokenOverlap)
	}
	t := s.tokens.mint(tokenDefault, hostWeChat, mintTokenValue("89_"), c.now, s.cfg.Rules.TokenTTL)
	writeJSON(w, http.StatusOK, tokenReply{AccessToken: t.value, ExpiresIn: secondsLeft(t, c.now)})
	return nil
}

// handleStableToken: POST /cgi-bin/stable_token. The same token while it has
// more than StableRotateBefore left; force_refresh revokes it at once but is
// limited per day and in spacing — beyond that the current token is returned
// unchanged, as documented ("not refreshed").
func (s *Simulator) handleStableToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.GrantType != "client_credential" {
		return wxErr(errInvalidGrantType, "invalid grant_type")
	}
	if err := s.checkAppCredentials(req.AppID, req.Secret); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rules := s.cfg.Rules
	cur := s.tokens.latest[tokenStable]
	if req.ForceRefresh && s.mayForceRefreshLocked(c.now) {
		if cur != nil {
			cur.revoked = true
		}
		cur = nil
	}
	if cur == nil || !cur.usable(c.now) || cur.expiresAt.Sub(c.now) <= rules.StableRotateBefore {
		// The old one (if any) stays valid until its own expiry.
		cur = s.tokens.mint(tokenStable, hostWeChat, mintTokenValue("89_S"), c.now, rules.TokenTTL)
	}
	writeJSON(w, http.StatusOK, tokenReply{AccessToken: cur.value, ExpiresIn: secondsLeft(cur, c.now)})
	return nil
}

func (s *Simulator) mayForceRefreshLocked(now time.Time) bool {
	ts := s.tokens
	if day := dayKey(now); ts.forceDay != day {
		ts.forceDay, ts.forceCount = day, 0
	}
	if ts.forceCount >= s.cfg.Rules.StableForcePerDay {
		return false
	}
	if !ts.lastForce.IsZero() && now.Sub(ts.lastForce) < s.cfg.Rules.StableForceGap {
		return false
	}
	ts.forceCount++
	ts.lastForce = now
	return true
}

// redeemCodeLocked consumes a one-time code (S5). Unknown and expired codes
// are 40029; a second use is usedCode.
func (s *Simulator) redeemCodeLocked(kind, value string, now time.Time, usedCode int) (*oneTimeCode, error) {
	code, ok := s.codes[kind+value]
	switch {
	case !ok:
		return nil, wxErr(errInvalidCode, "invalid code")
	case code.used:
		return nil, wxErr(usedCode, "code been used")
	case !now.Before(code.expiresAt):
		return nil, wxErr(errInvalidCode, "invalid code, code expired")
	}
	code.used = true
	return code, nil
}

func (s *Simulator) issueCodeLocked(kind, subject string) string {
	now := s.clock.Now()
	value := randomString(32, alnum)
	if kind == codePhone {
		value = randomString(64, "0123456789abcdef")
	}
	s.codes[kind+value] = &oneTimeCode{
		subject: subject, appID: s.cfg.AppID,
		issuedAt: now, expiresAt: now.Add(s.cfg.Rules.CodeTTL),
	}
	return value
}

// handleCode2Session: GET /sns/jscode2session (no access token).
func (s *Simulator) handleCode2Session(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	if err := s.checkAppCredentials(q.Get("appid"), q.Get("secret")); err != nil {
		return err
	}
	if q.Get("grant_type") != "authorization_code" {
		return wxErr(errInvalidGrantType, "invalid grant_type")
	}
	jsCode := q.Get("js_code")
	if jsCode == "" {
		return wxErr(errInvalidCode, "js_code missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code, err := s.redeemCodeLocked(codeJS, jsCode, c.now, s.cfg.Rules.UsedCodeCode)
	if err != nil {
		return err
	}
	if code.appID != q.Get("appid") {
		return wxErr(errInvalidCode, "invalid code, not issued for this appid")
	}
	cust := s.customers[code.subject]
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	cust.sessionKey = base64.StdEncoding.EncodeToString(key)
	writeJSON(w, http.StatusOK, struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid,omitempty"`
	}{cust.OpenID, cust.sessionKey, cust.UnionID})
	return nil
}

// handlePhoneNumber: POST /wxa/business/getuserphonenumber.
func (s *Simulator) handlePhoneNumber(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Code string `json:"code"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return wxErr(errInvalidCode, "code missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code, err := s.redeemCodeLocked(codePhone, req.Code, c.now, errInvalidCode)
	if err != nil {
		return err
	}
	country, pure := splitPhone(code.phone)
	full := pure
	if country != "86" {
		full = "+" + country + pure
	}
	type watermark struct {
		Timestamp int64  `json:"timestamp"`
		AppID     string `json:"appid"`
	}
	type phoneInfo struct {
		PhoneNumber     string    `json:"phoneNumber"`
		PurePhoneNumber string    `json:"purePhoneNumber"`
		CountryCode     string    `json:"countryCode"`
		Watermark       watermark `json:"watermark"`
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		PhoneInfo phoneInfo `json:"phone_info"`
	}{okBody(), phoneInfo{full, pure, country, watermark{code.issuedAt.Unix(), code.appID}}})
	return nil
}

// splitPhone accepts "13800000000" (China) or "+852 51234567" / "+852-51234567".
func splitPhone(p string) (country, pure string) {
	if !strings.HasPrefix(p, "+") {
		return "86", p
	}
	rest := p[1:]
	if i := strings.IndexAny(rest, " -"); i > 0 {
		return rest[:i], strings.NewReplacer(" ", "", "-", "").Replace(rest[i+1:])
	}
	return "86", strings.TrimPrefix(rest, "86")
}

// customSendRequest is the body of message/custom/send.
type customSendRequest struct {
	ToUser  string `json:"touser"`
	MsgType string `json:"msgtype"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Image *struct {
		MediaID string `json:"media_id"`
	} `json:"image"`
	Link            *LinkCard `json:"link"`
	MiniProgramPage *struct {
		Title        string `json:"title"`
		PagePath     string `json:"pagepath"`
		ThumbMediaID string `json:"thumb_media_id"`
	} `json:"miniprogrampage"`
}

// handleCustomSend: POST /cgi-bin/message/custom/send. The content is checked
// before the reply window so that a malformed message does not use up quota.
func (s *Simulator) handleCustomSend(w http.ResponseWriter, r *http.Request, c *call) error {
	var req customSendRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cust, ok := s.customers[req.ToUser]
	if !ok {
		return wxErr(errInvalidOpenID, "invalid openid")
	}
	d, err := s.customContentLocked(&req, c.now)
	if err != nil {
		return err
	}
	if err := checkWindow(cust, c.now); err != nil {
		return err
	}
	cust.windowLeft--
	cust.typing = false
	d.Kind = "custom"
	s.deliverToCustomerLocked(cust, d)
	writeJSON(w, http.StatusOK, okBody())
	return nil
}

func (s *Simulator) customContentLocked(req *customSendRequest, now time.Time) (CustomerDelivery, error) {
	d := CustomerDelivery{MsgType: req.MsgType, At: now}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return d, wxErr(errEmptyContent, "empty content")
		}
		d.Text = req.Text.Content
	case "image":
		if req.Image == nil {
			return d, wxErr(errInvalidMediaID, "invalid media_id")
		}
		m, err := s.lookupMediaLocked(hostWeChat, req.Image.MediaID, now)
		if err != nil {
			return d, err
		}
		d.MediaID, d.Media, d.MediaType = m.id, m.data, m.contentType
	case "link":
		if req.Link == nil || req.Link.Title == "" || req.Link.URL == "" {
			return d, wxErr(errInvalidParam, "invalid param: link.title and link.url are required")
		}
		d.Link = req.Link
	case "miniprogrampage":
		p := req.MiniProgramPage
		if p == nil || p.Title == "" || p.PagePath == "" {
			return d, wxErr(errInvalidParam, "invalid param: miniprogrampage.title and pagepath are required")
		}
		m, err := s.lookupMediaLocked(hostWeChat, p.ThumbMediaID, now)
		if err != nil {
			return d, err
		}
		d.Page = &PageCard{Title: p.Title, PagePath: p.PagePath, ThumbMediaID: p.ThumbMediaID}
		d.MediaID, d.Media, d.MediaType = m.id, m.data, m.contentType
	default:
		return d, wxErr(errInvalidMsgType, "invalid message type")
	}
	return d, nil
}

// checkWindow applies rule S6 without consuming a send.
func checkWindow(cust *customer, now time.Time) error {
	if cust.windowUntil.IsZero() || !now.Before(cust.windowUntil) {
		return wxErr(errReplyTimeLimit, "response out of time limit or subscription is canceled")
	}
	if cust.windowLeft <= 0 {
		return wxErr(errReplyCountLimit, "response count limit reached")
	}
	return nil
}

// openWindowLocked applies a qualifying user action. Quotas do not add up:
// the count becomes the larger of what is left and what the action grants,
// and the deadline the later of the two, so an enter event inside an open
// 48-hour window never shortens it.
func openWindowLocked(cust *customer, now time.Time, window time.Duration, quota int) {
	active := !cust.windowUntil.IsZero() && now.Before(cust.windowUntil)
	if !active {
		cust.windowLeft = 0
	}
	if until := now.Add(window); !active || until.After(cust.windowUntil) {
		cust.windowUntil = until
	}
	cust.windowLeft = max(cust.windowLeft, quota)
}

func (s *Simulator) deliverToCustomerLocked(cust *customer, d CustomerDelivery) {
	d.Seq = len(cust.delivered) + 1
	if d.MediaID != "" {
		d.MediaURL = s.publicURL + PrefixSim + "/api/media/" + d.MediaID
	}
	cust.delivered = append(cust.delivered, d)
}

// handleCustomTyping: POST /cgi-bin/message/custom/typing. Subject to the
// reply window like a send, but it does not use up a send.
func (s *Simulator) handleCustomTyping(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		ToUser  string `json:"touser"`
		Command string `json:"command"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cust, ok := s.customers[req.ToUser]
	if !ok {
		return wxErr(errInvalidOpenID, "invalid openid")
	}
	if req.Command != "Typing" && req.Command != "CancelTyping" {
		return wxErr(errInvalidParam, "invalid param: command must be Typing or CancelTyping")
	}
	if err := checkWindow(cust, c.now); err != nil {
		return err
	}
	cust.typing = req.Command == "Typing"
	writeJSON(w, http.StatusOK, okBody())
	return nil
}

// handleSubscribeSend: POST /cgi-bin/message/subscribe/send (rule S7).
// Data is validated before consent is consumed, so a rejected message does
// not cost the customer's one-time grant.
func (s *Simulator) handleSubscribeSend(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		ToUser           string                    `json:"touser"`
		TemplateID       string                    `json:"template_id"`
		Page             string                    `json:"page"`
		Data             map[string]subscribeValue `json:"data"`
		MiniprogramState string                    `json:"miniprogram_state"`
		Lang             string                    `json:"lang"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cust, ok := s.customers[req.ToUser]
	if !ok {
		return wxErr(errInvalidOpenID, "invalid openid")
	}
	keywords, ok := s.cfg.SubscribeTemplates[req.TemplateID]
	if !ok {
		return wxErr(errInvalidTemplateID, "invalid template_id")
	}
	values, err := validateSubscribeData(keywords, req.Data)
	if err != nil {
		return err
	}
	if err := validateSubscribeOptions(req.MiniprogramState, req.Lang, req.Page); err != nil {
		return err
	}
	if cust.consents[req.TemplateID] <= 0 {
		return wxErr(errUserRefused, "user refuse to accept the msg")
	}
	cust.consents[req.TemplateID]--
	msgID := s.newIDLocked()
	s.deliverToCustomerLocked(cust, CustomerDelivery{
		Kind: "subscribe", MsgType: "subscribe", TemplateID: req.TemplateID,
		Data: values, PagePath: req.Page, MsgID: msgID, At: c.now,
	})
	writeJSON(w, http.StatusOK, struct {
		errBody
		MsgID int64 `json:"msgid"`
	}{okBody(), msgID})
	return nil
}

func validateSubscribeOptions(state, lang, page string) error {
	switch state {
	case "", "developer", "trial", "formal":
	default:
		return wxErr(errTemplateData, "argument invalid! miniprogram_state")
	}
	switch lang {
	case "", "zh_CN", "en_US", "zh_HK", "zh_TW":
	default:
		return wxErr(errTemplateData, "argument invalid! lang")
	}
	if utf8.RuneCountInString(page) > 1024 {
		return wxErr(41030, "invalid page")
	}
	return nil
}
