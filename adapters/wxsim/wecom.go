package wxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// handleWeComToken: GET /cgi-bin/gettoken. The same token while it is valid.
func (s *Simulator) handleWeComToken(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	corpID, secret := q.Get("corpid"), q.Get("corpsecret")
	switch {
	case corpID == "":
		return wxErr(errMissingAppID, "corpid missing")
	case secret == "":
		return wxErr(errMissingSecret, "corpsecret missing")
	case corpID != s.cfg.CorpID:
		return wxErr(errInvalidAppID, "invalid corpid")
	case secret != s.cfg.CorpSecret:
		return wxErr(errInvalidCredential, "invalid credential")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens.latest[tokenWeCom]
	if t == nil || !t.usable(c.now) {
		t = s.tokens.mint(tokenWeCom, hostWeCom, mintTokenValue(""), c.now, s.cfg.Rules.TokenTTL)
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		tokenReply
	}{okBody(), tokenReply{AccessToken: t.value, ExpiresIn: secondsLeft(t, c.now)}})
	return nil
}

// flexInt accepts a JSON number or a numeric string: silenceper sends
// agentid as a string, the docs as a number, and the server takes both.
type flexInt struct {
	n     int
	valid bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		f.n, f.valid = n, err == nil
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return nil // not an integer: reported as an invalid agentid
	}
	f.n, f.valid = n, true
	return nil
}

type mediaField struct {
	MediaID string `json:"media_id"`
}

// appMessageRequest is the body of WeCom message/send.
type appMessageRequest struct {
	ToUser  string  `json:"touser"`
	ToParty string  `json:"toparty"`
	ToTag   string  `json:"totag"`
	MsgType string  `json:"msgtype"`
	AgentID flexInt `json:"agentid"`
	Safe    int     `json:"safe"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Markdown *struct {
		Content string `json:"content"`
	} `json:"markdown"`
	TextCard *TextCard   `json:"textcard"`
	Image    *mediaField `json:"image"`
	Voice    *mediaField `json:"voice"`
	Video    *mediaField `json:"video"`
	File     *mediaField `json:"file"`
}

// Content limits of app messages, in bytes (btntxt in characters).
const (
	maxTextBytes     = 2048
	maxMarkdownBytes = 2048
	maxCardTitle     = 128
	maxCardDesc      = 512
	maxCardBtn       = 4
)

// handleWeComSend: POST /cgi-bin/message/send (rule S14).
func (s *Simulator) handleWeComSend(w http.ResponseWriter, r *http.Request, c *call) error {
	var req appMessageRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !req.AgentID.valid || req.AgentID.n != s.cfg.AgentID {
		return wxErr(errInvalidAgentID, "invalid agentid")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.appContentLocked(&req, c.now)
	if err != nil {
		return err
	}
	rc, err := s.resolveRecipientsLocked(&req)
	if err != nil {
		return err
	}
	d.MsgID = randomString(40, alnum+"_-")
	d.Safe = req.Safe == 1
	d.At = c.now
	send := AppSend{
		MsgID: d.MsgID, MsgType: d.MsgType, At: c.now, Delivered: []string{},
		InvalidUser: rc.invalidUser, InvalidParty: rc.invalidParty, InvalidTag: rc.invalidTag,
	}
	for _, m := range rc.members {
		if !s.withinMemberLimitsLocked(m, c.now) {
			send.Dropped = append(send.Dropped, m.userID)
			continue
		}
		m.sent = append(m.sent, c.now)
		d.Seq = len(m.inbox) + 1
		m.inbox = append(m.inbox, d)
		send.Delivered = append(send.Delivered, m.userID)
	}
	s.appSends = append(s.appSends, send)
	writeJSON(w, http.StatusOK, struct {
		errBody
		InvalidUser    string `json:"invaliduser"`
		InvalidParty   string `json:"invalidparty"`
		InvalidTag     string `json:"invalidtag"`
		UnlicensedUser string `json:"unlicenseduser"`
		MsgID          string `json:"msgid"`
		ResponseCode   string `json:"response_code,omitempty"`
	}{okBody(), rc.invalidUser, rc.invalidParty, rc.invalidTag, "", d.MsgID, ""})
	return nil
}

// appContentLocked validates the payload. Like the real server, text and
// textcard fields that are too long are cut, markdown that is too long is
// refused.
func (s *Simulator) appContentLocked(req *appMessageRequest, now time.Time) (WeComDelivery, error) {
	d := WeComDelivery{MsgType: req.MsgType}
	media := func(f *mediaField, kind string) error {
		if f == nil {
			return wxErr(errInvalidMediaID, "invalid media_id")
		}
		m, err := s.lookupMediaLocked(hostWeCom, f.MediaID, now)
		if err != nil {
			return err
		}
		if m.kind != kind {
			return wxErr(errInvalidMediaID, "invalid media_id: media is %s, not %s", m.kind, kind)
		}
		d.MediaID, d.Media = m.id, m.data
		d.MediaURL = s.publicURL + PrefixSim + "/api/media/" + m.id
		return nil
	}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return d, wxErr(errEmptyContent, "empty content")
		}
		d.Content = truncateBytes(req.Text.Content, maxTextBytes)
	case "markdown":
		if req.Markdown == nil || req.Markdown.Content == "" {
			return d, wxErr(errEmptyContent, "empty content")
		}
		if len(req.Markdown.Content) > maxMarkdownBytes || !utf8.ValidString(req.Markdown.Content) {
			return d, wxErr(errContentTooLong, "content size out of limit")
		}
		d.Content = req.Markdown.Content
	case "textcard":
		tc := req.TextCard
		if tc == nil || tc.Title == "" || tc.Description == "" {
			return d, wxErr(errEmptyContent, "empty content")
		}
		if tc.URL == "" {
			return d, wxErr(errInvalidParamWeCom, "invalid parameter: textcard.url")
		}
		card := TextCard{
			Title:       truncateBytes(tc.Title, maxCardTitle),
			Description: truncateBytes(tc.Description, maxCardDesc),
			URL:         tc.URL,
			BtnTxt:      truncateRunes(tc.BtnTxt, maxCardBtn),
		}
		if card.BtnTxt == "" {
			card.BtnTxt = "详情"
		}
		d.TextCard = &card
	case "image":
		return d, media(req.Image, "image")
	case "voice":
		return d, media(req.Voice, "voice")
	case "video":
		return d, media(req.Video, "video")
	case "file":
		return d, media(req.File, "file")
	default:
		// news, mpnews, miniprogram_notice, template_card are not simulated.
		return d, wxErr(errInvalidMsgType, "invalid message type (wxsim simulates text, markdown, textcard, image, voice, video, file)")
	}
	return d, nil
}

type recipients struct {
	members                               []*staffMember
	invalidUser, invalidParty, invalidTag string
}

// resolveRecipientsLocked splits the recipients into members and invalid
// ids. The corp has one department, "1", holding every member, and no tags.
// Userids match case-insensitively and invalid ones are reported lower-cased.
func (s *Simulator) resolveRecipientsLocked(req *appMessageRequest) (recipients, error) {
	var rc recipients
	if req.ToUser == "" && req.ToParty == "" && req.ToTag == "" {
		return rc, wxErr(errInvalidParamWeCom, "invalid parameter: touser, toparty and totag are all empty")
	}
	seen := map[string]bool{}
	add := func(key string) {
		if !seen[key] {
			seen[key] = true
			rc.members = append(rc.members, s.staff[key])
		}
	}
	addAll := func() {
		for _, key := range s.staffOrder {
			add(key)
		}
	}
	var badUsers, badParties, badTags []string
	if req.ToUser == "@all" {
		addAll()
	} else {
		for _, u := range splitIDs(req.ToUser) {
			key := strings.ToLower(u)
			if _, ok := s.staff[key]; ok {
				add(key)
			} else {
				badUsers = append(badUsers, key)
			}
		}
		for _, p := range splitIDs(req.ToParty) {
			if p == "1" {
				addAll()
			} else {
				badParties = append(badParties, p)
			}
		}
		badTags = splitIDs(req.ToTag)
	}
	rc.invalidUser = strings.Join(badUsers, "|")
	rc.invalidParty = strings.Join(badParties, "|")
	rc.invalidTag = strings.Join(badTags, "|")
	if len(rc.members) == 0 {
		return rc, wxErr(errAllInvalidReceiver, "user & party & tag all invalid")
	}
	return rc, nil
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// withinMemberLimitsLocked applies the per-app, per-member limits; the real
// server drops the excess without telling the sender.
func (s *Simulator) withinMemberLimitsLocked(m *staffMember, now time.Time) bool {
	hourAgo := now.Add(-time.Hour)
	kept := m.sent[:0]
	for _, t := range m.sent {
		if t.After(hourAgo) {
			kept = append(kept, t)
		}
	}
	m.sent = kept
	lastMinute := 0
	for _, t := range m.sent {
		if t.After(now.Add(-time.Minute)) {
			lastMinute++
		}
	}
	return lastMinute < s.cfg.Rules.WeComPerUserMinute && len(m.sent) < s.cfg.Rules.WeComPerUserHour
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// handleWeComUserInfo: GET /cgi-bin/auth/getuserinfo?code=… (OAuth in WeCom).
func (s *Simulator) handleWeComUserInfo(w http.ResponseWriter, r *http.Request, c *call) error {
	userID, err := s.redeemOAuth(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		UserID string `json:"userid"`
	}{okBody(), userID})
	return nil
}

// handleWeComUserInfoOld: the older GET /cgi-bin/user/getuserinfo, which
// silenceper's Oauth.UserFromCode still calls; note its capitalised keys.
func (s *Simulator) handleWeComUserInfoOld(w http.ResponseWriter, r *http.Request, c *call) error {
	userID, err := s.redeemOAuth(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		UserID   string `json:"UserId"`
		DeviceID string `json:"DeviceId"`
	}{okBody(), userID, ""})
	return nil
}

func (s *Simulator) redeemOAuth(r *http.Request, c *call) (string, error) {
	value := r.URL.Query().Get("code")
	if value == "" {
		return "", wxErr(errInvalidCode, "code missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code, err := s.redeemCodeLocked(codeOAuth, value, c.now, errInvalidCode)
	if err != nil {
		return "", err
	}
	return code.subject, nil
}

// staffLocked finds a member by userid (case-insensitively).
func (s *Simulator) staffLocked(userID string) (*staffMember, error) {
	m, ok := s.staff[strings.ToLower(userID)]
	if !ok {
		return nil, fmt.Errorf("wxsim: %q is not a member of the corp", userID)
	}
	return m, nil
}
