package wxsim

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// 微信客服 (WeChat Customer Service, "kf"), rules S10–S13. A WeChat user
// writes to a kf account; WeCom posts a content-free kf_msg_or_event
// callback; the gateway pulls with sync_msg and answers with send_msg while
// the session allows it.

// KFAccount is a 微信客服 account of the corp.
type KFAccount struct {
	OpenKfID string `json:"open_kfid"`
	Name     string `json:"name"`
}

// Session states (service_state).
const (
	KFStateNew       = 0 // 未处理
	KFStateAssistant = 1 // 由智能助手接待
	KFStatePool      = 2 // 待接入池排队中
	KFStateServicer  = 3 // 由人工接待
	KFStateEnded     = 4 // 已结束 / 未开始
)

// Message origins in sync_msg.
const (
	kfOriginCustomer = 3
	kfOriginSystem   = 4
	kfOriginServicer = 5
)

// KFSessionInfo is a kf session as the simulator sees it.
type KFSessionInfo struct {
	OpenKfID        string       `json:"open_kfid"`
	ExternalUserID  string       `json:"external_userid"`
	State           int          `json:"service_state"`
	ServicerUserID  string       `json:"servicer_userid,omitempty"`
	LastCustomerMsg time.Time    `json:"last_customer_msg"`
	SendsLeft       int          `json:"sends_left"`
	Delivered       []KFDelivery `json:"delivered"`
}

// KFDelivery is a message the customer received in the kf chat, from
// send_msg, send_msg_on_event or a servicer in the WeCom client.
type KFDelivery struct {
	Seq     int            `json:"seq"`
	MsgID   string         `json:"msgid"`
	Via     string         `json:"via"` // send_msg, send_msg_on_event, servicer:<userid>
	MsgType string         `json:"msgtype"`
	Content map[string]any `json:"content"` // the object named after msgtype
	At      time.Time      `json:"at"`
}

type kfSession struct {
	openKfID, externalUserID string
	state                    int
	servicer                 string
	lastCustomerMsg          time.Time
	sendsLeft                int
	delivered                []KFDelivery
}

// kfCode is a welcome_code or msg_code for send_msg_on_event.
type kfCode struct {
	session   *kfSession
	state     int // the session must still be in this state; -1: any (welcome)
	expiresAt time.Time
	used      bool
	menu      bool // msgmenu allowed (welcome and end codes)
}

type kfLogItem struct {
	seq      int
	openKfID string
	item     map[string]any
}

// kfStore is guarded by Simulator.mu.
type kfStore struct {
	accounts   map[string]KFAccount
	order      []string
	customers  map[string]string // external_userid → nickname
	sessions   map[string]*kfSession
	log        []kfLogItem
	syncTokens map[string]time.Time
	codes      map[string]*kfCode
	msgIDs     map[string]bool // open_kfid/msgid used by send_msg
	receiving  map[string]bool // lower-cased userid → servicer status
	emptyPages int
}

func newKFStore(accounts []KFAccount, staff []string) *kfStore {
	k := &kfStore{
		accounts: map[string]KFAccount{}, customers: map[string]string{}, sessions: map[string]*kfSession{},
		syncTokens: map[string]time.Time{}, codes: map[string]*kfCode{}, msgIDs: map[string]bool{}, receiving: map[string]bool{},
	}
	for _, a := range accounts {
		k.accounts[a.OpenKfID] = a
		k.order = append(k.order, a.OpenKfID)
	}
	for _, u := range staff {
		k.receiving[strings.ToLower(u)] = true
	}
	return k
}

// sessionLocked returns the session of a customer with an account, ending
// it when 48 h have passed since the customer last wrote.
func (s *Simulator) kfSessionLocked(openKfID, ext string, now time.Time) *kfSession {
	key := openKfID + "/" + ext
	sess, ok := s.kf.sessions[key]
	if !ok {
		sess = &kfSession{openKfID: openKfID, externalUserID: ext, state: KFStateEnded}
		s.kf.sessions[key] = sess
	}
	if sess.state != KFStateEnded && !now.Before(sess.lastCustomerMsg.Add(s.cfg.Rules.ReplyWindow)) {
		sess.state, sess.servicer = KFStateEnded, ""
	}
	return sess
}

func (s *Simulator) kfAccountLocked(openKfID string) error {
	if openKfID == "" {
		return wxErr(95000, "invalid open_kfid")
	}
	if _, ok := s.kf.accounts[openKfID]; !ok {
		return wxErr(95004, "open_kfid not exist")
	}
	return nil
}

func (s *Simulator) kfLogLocked(openKfID string, item map[string]any) {
	seq := len(s.kf.log) + 1
	item["msgid"] = fmt.Sprintf("kf%d%s", s.newIDLocked(), randomString(6, alnum))
	s.kf.log = append(s.kf.log, kfLogItem{seq: seq, openKfID: openKfID, item: item})
}

func (s *Simulator) kfIssueCodeLocked(sess *kfSession, state int, ttl time.Duration, menu bool, now time.Time) string {
	code := randomString(40, alnum+"_-")
	s.kf.codes[code] = &kfCode{session: sess, state: state, expiresAt: now.Add(ttl), menu: menu}
	return code
}

// --- the outside world -----------------------------------------------------

// KFCustomerSends is a WeChat user writing to a kf account (text, image or
// voice). A session in state 4 starts over in state 0; the message opens
// the 48 h / 5 sends window and a kf_msg_or_event callback is posted.
func (s *Simulator) KFCustomerSends(ctx context.Context, openKfID, externalUserID string, m Message) (Push, error) {
	s.mu.Lock()
	now := s.clock.Now()
	if err := s.kfAccountLocked(openKfID); err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	ext := s.kfCustomerLocked(externalUserID)
	item := map[string]any{"open_kfid": openKfID, "external_userid": ext, "send_time": now.Unix(), "origin": kfOriginCustomer, "msgtype": m.Type}
	switch m.Type {
	case MsgText:
		if m.Content == "" {
			s.mu.Unlock()
			return Push{}, fmt.Errorf("wxsim: empty text message")
		}
		item["text"] = map[string]any{"content": m.Content}
	case MsgImage, MsgVoice:
		data := m.Data
		if len(data) == 0 {
			data = placeholder(m.Type)
		}
		contentType, err := checkMedia(hostWeCom, m.Type, data)
		if err != nil {
			s.mu.Unlock()
			return Push{}, fmt.Errorf("wxsim: kf %s: %v", m.Type, err)
		}
		obj := s.storeMediaLocked(hostWeCom, m.Type, mediaFilename(m.Type, contentType), contentType, data, now)
		item[m.Type] = map[string]any{"media_id": obj.id}
	default:
		s.mu.Unlock()
		return Push{}, fmt.Errorf("wxsim: kf customers send text, image or voice, not %q", m.Type)
	}
	sess := s.kfSessionLocked(openKfID, ext, now)
	if sess.state == KFStateEnded {
		sess.state, sess.servicer = KFStateNew, ""
	}
	sess.lastCustomerMsg, sess.sendsLeft = now, s.cfg.Rules.ReplyQuota
	s.kfLogLocked(openKfID, item)
	return s.kfNotifyUnlock(ctx, openKfID, now)
}

func (s *Simulator) kfCustomerLocked(ext string) string {
	if ext == "" {
		ext = "wm" + randomString(30, idChars)
	}
	if _, ok := s.kf.customers[ext]; !ok {
		s.kf.customers[ext] = ""
	}
	return ext
}

// KFEnterSession is a WeChat user opening the kf chat (from a contact-way
// link with scene / scene_param). A welcome_code comes with the event when
// the customer has not written in the last 48 h.
func (s *Simulator) KFEnterSession(ctx context.Context, openKfID, externalUserID, scene, sceneParam string) (Push, error) {
	s.mu.Lock()
	now := s.clock.Now()
	if err := s.kfAccountLocked(openKfID); err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	ext := s.kfCustomerLocked(externalUserID)
	sess := s.kfSessionLocked(openKfID, ext, now)
	ev := map[string]any{"event_type": "enter_session", "open_kfid": openKfID, "external_userid": ext, "scene": scene, "scene_param": sceneParam}
	if sess.lastCustomerMsg.IsZero() || !now.Before(sess.lastCustomerMsg.Add(s.cfg.Rules.ReplyWindow)) {
		ev["welcome_code"] = s.kfIssueCodeLocked(sess, -1, s.cfg.Rules.KFWelcomeCodeTTL, true, now)
	}
	s.kfLogLocked(openKfID, map[string]any{"send_time": now.Unix(), "origin": kfOriginSystem, "msgtype": MsgEvent, "event": ev})
	return s.kfNotifyUnlock(ctx, openKfID, now)
}

// KFServicerSends is a servicer replying from the WeCom client to a session
// they own (state 3). It reaches the customer and shows up in sync_msg with
// origin 5.
func (s *Simulator) KFServicerSends(ctx context.Context, userID, openKfID, externalUserID, content string) (Push, error) {
	s.mu.Lock()
	now := s.clock.Now()
	member, err := s.staffLocked(userID)
	if err == nil {
		err = s.kfAccountLocked(openKfID)
	}
	if err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	sess := s.kfSessionLocked(openKfID, externalUserID, now)
	if sess.state != KFStateServicer || sess.servicer != member.userID {
		s.mu.Unlock()
		return Push{}, fmt.Errorf("wxsim: %s does not own the session (state %d, servicer %q)", member.userID, sess.state, sess.servicer)
	}
	body := map[string]any{"content": content}
	s.kfLogLocked(openKfID, map[string]any{"open_kfid": openKfID, "external_userid": externalUserID, "send_time": now.Unix(),
		"origin": kfOriginServicer, "servicer_userid": member.userID, "msgtype": MsgText, "text": body})
	s.kfDeliverLocked(sess, "servicer:"+member.userID, MsgText, body, "", now)
	return s.kfNotifyUnlock(ctx, openKfID, now)
}

// KFSetServicerStatus switches a servicer between 接待中 and 停止接待; the
// change appears as a servicer_status_change event.
func (s *Simulator) KFSetServicerStatus(ctx context.Context, userID string, receiving bool) (Push, error) {
	s.mu.Lock()
	now := s.clock.Now()
	member, err := s.staffLocked(userID)
	if err != nil || len(s.kf.order) == 0 {
		s.mu.Unlock()
		return Push{}, fmt.Errorf("wxsim: cannot change servicer status: %v", err)
	}
	s.kf.receiving[strings.ToLower(member.userID)] = receiving
	status := 2
	if receiving {
		status = 1
	}
	openKfID := s.kf.order[0]
	s.kfLogLocked(openKfID, map[string]any{"send_time": now.Unix(), "origin": kfOriginSystem, "msgtype": MsgEvent,
		"event": map[string]any{"event_type": "servicer_status_change", "servicer_userid": member.userID, "status": status, "open_kfid": openKfID}})
	return s.kfNotifyUnlock(ctx, openKfID, now)
}

// KFInjectEmptyPage makes the next sync_msg answer an empty msg_list with
// has_more=1, which the real server does and clients must keep pulling through.
func (s *Simulator) KFInjectEmptyPage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kf.emptyPages++
}

// KFSession returns a session and what the customer received in it.
func (s *Simulator) KFSession(openKfID, externalUserID string) (KFSessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kf.sessions[openKfID+"/"+externalUserID]; !ok {
		return KFSessionInfo{}, false
	}
	sess := s.kfSessionLocked(openKfID, externalUserID, s.clock.Now())
	return KFSessionInfo{
		OpenKfID: sess.openKfID, ExternalUserID: sess.externalUserID, State: sess.state, ServicerUserID: sess.servicer,
		LastCustomerMsg: sess.lastCustomerMsg, SendsLeft: sess.sendsLeft, Delivered: slices.Clone(sess.delivered),
	}, true
}

// kfNotifyUnlock posts a kf_msg_or_event callback carrying a fresh sync
// Token; it releases s.mu (held by the caller) before sending.
func (s *Simulator) kfNotifyUnlock(ctx context.Context, openKfID string, now time.Time) (Push, error) {
	token := "ENC" + randomString(44, alnum)
	s.kf.syncTokens[token] = now.Add(s.cfg.Rules.KFSyncTokenTTL)
	fields := []field{
		str("ToUserName", s.cfg.CorpID),
		num("CreateTime", now.Unix()),
		str("MsgType", MsgEvent),
		str("Event", "kf_msg_or_event"),
		str("Token", token),
		str("OpenKfId", openKfID),
	}
	p := &Push{Target: PushWeCom, From: openKfID, MsgType: MsgEvent, Event: "kf_msg_or_event", CreateTime: now.Unix(), At: now,
		Plaintext: renderXML(fields), URL: s.wecomURL}
	s.recordPushLocked(p)
	s.mu.Unlock()
	s.runPush(ctx, pushJob{
		push:  p,
		build: func(at time.Time) (envelope, error) { return s.weComEnvelope(p.URL, p.Plaintext, at) },
		judge: s.judgeWeCom,
	})
	return s.pushSnapshot(p), nil
}

func (s *Simulator) kfDeliverLocked(sess *kfSession, via, msgType string, content map[string]any, msgID string, now time.Time) string {
	if msgID == "" {
		msgID = randomString(32, alnum)
	}
	sess.delivered = append(sess.delivered, KFDelivery{
		Seq: len(sess.delivered) + 1, MsgID: msgID, Via: via, MsgType: msgType, Content: content, At: now,
	})
	return msgID
}

// --- APIs ------------------------------------------------------------------

// handleKFSyncMsg: POST /cgi-bin/kf/sync_msg.
func (s *Simulator) handleKFSyncMsg(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Cursor      string `json:"cursor"`
		Token       string `json:"token"`
		Limit       int    `json:"limit"`
		VoiceFormat int    `json:"voice_format"`
		OpenKfID    string `json:"open_kfid"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Token != "" {
		if exp, ok := s.kf.syncTokens[req.Token]; !ok || !c.now.Before(exp) {
			return wxErr(s.cfg.Rules.KFMsgTokenCode, "invalid msg token")
		}
	}
	if req.OpenKfID != "" {
		if err := s.kfAccountLocked(req.OpenKfID); err != nil {
			return err
		}
	}
	pos, err := parseKFCursor(req.Cursor)
	if err != nil {
		return err
	}
	limit := req.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	list := []map[string]any{}
	next := pos
	injected := s.kf.emptyPages > 0
	if injected {
		s.kf.emptyPages--
	} else {
		for _, it := range s.kf.log[min(pos, len(s.kf.log)):] {
			if len(list) == limit {
				break
			}
			next = it.seq
			if req.OpenKfID == "" || it.openKfID == req.OpenKfID {
				list = append(list, maps.Clone(it.item))
			}
		}
	}
	hasMore := 0
	if injected || next < len(s.kf.log) {
		hasMore = 1
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		NextCursor string           `json:"next_cursor"`
		HasMore    int              `json:"has_more"`
		MsgList    []map[string]any `json:"msg_list"`
	}{okBody(), formatKFCursor(next), hasMore, list})
	return nil
}

// Cursors are opaque to clients; this one encodes the log position.
func formatKFCursor(pos int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("kfpos:" + strconv.Itoa(pos)))
}

func parseKFCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	n, perr := strconv.Atoi(strings.TrimPrefix(string(raw), "kfpos:"))
	if err != nil || perr != nil || n < 0 || !strings.HasPrefix(string(raw), "kfpos:") {
		return 0, wxErr(errInvalidParamWeCom, "invalid parameter: cursor")
	}
	return n, nil
}

var reKFMsgID = regexp.MustCompile(`^[0-9A-Za-z_-]{1,32}$`)

// kfContent validates a send_msg / send_msg_on_event payload and returns
// the object named after msgtype.
func (s *Simulator) kfContentLocked(msgType string, body map[string]any, now time.Time) (map[string]any, error) {
	obj, _ := body[msgType].(map[string]any)
	switch msgType {
	case "text":
		content, _ := obj["content"].(string)
		if content == "" {
			return nil, wxErr(errEmptyContent, "empty content")
		}
		if len(content) > 2048 {
			return nil, wxErr(errContentTooLong, "content size out of limit")
		}
	case "image", "voice", "video", "file":
		id, _ := obj["media_id"].(string)
		if _, err := s.lookupMediaLocked(hostWeCom, id, now); err != nil {
			return nil, err
		}
	case "link", "miniprogram", "location":
		if obj == nil {
			return nil, wxErr(errInvalidParamWeCom, "invalid parameter: %s", msgType)
		}
	case "msgmenu":
		list, _ := obj["list"].([]any)
		if len(list) == 0 || len(list) > 10 {
			return nil, wxErr(errInvalidParamWeCom, "invalid parameter: msgmenu.list must have 1–10 items")
		}
	default:
		return nil, wxErr(errInvalidMsgType, "invalid message type")
	}
	return obj, nil
}

// handleKFSendMsg: POST /cgi-bin/kf/send_msg (rule S11).
func (s *Simulator) handleKFSendMsg(w http.ResponseWriter, r *http.Request, c *call) error {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	touser, _ := body["touser"].(string)
	openKfID, _ := body["open_kfid"].(string)
	msgID, _ := body["msgid"].(string)
	msgType, _ := body["msgtype"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.kfAccountLocked(openKfID); err != nil {
		return err
	}
	if _, ok := s.kf.customers[touser]; !ok {
		return wxErr(40096, "invalid external userid")
	}
	if msgID != "" && (!reKFMsgID.MatchString(msgID) || s.kf.msgIDs[openKfID+"/"+msgID]) {
		return wxErr(errInvalidParamWeCom, "invalid parameter: msgid malformed or already used")
	}
	content, err := s.kfContentLocked(msgType, body, c.now)
	if err != nil {
		return err
	}
	sess := s.kfSessionLocked(openKfID, touser, c.now)
	// The time limit is reported as such even though the expired session
	// is also in state 4 by now.
	switch {
	case !sess.lastCustomerMsg.IsZero() && !c.now.Before(sess.lastCustomerMsg.Add(s.cfg.Rules.ReplyWindow)):
		return wxErr(s.cfg.Rules.KFTimeLimitCode, "send msg time limit")
	case sess.state != KFStateNew && sess.state != KFStateAssistant:
		return wxErr(s.cfg.Rules.KFStateCode, "session state %d does not allow send_msg", sess.state)
	case sess.sendsLeft <= 0:
		return wxErr(s.cfg.Rules.KFCountLimitCode, "send msg count limit")
	}
	sess.sendsLeft--
	if msgID != "" {
		s.kf.msgIDs[openKfID+"/"+msgID] = true
	}
	id := s.kfDeliverLocked(sess, "send_msg", msgType, content, msgID, c.now)
	writeJSON(w, http.StatusOK, struct {
		errBody
		MsgID string `json:"msgid"`
	}{okBody(), id})
	return nil
}

// handleKFSendMsgOnEvent: POST /cgi-bin/kf/send_msg_on_event (rule S12).
func (s *Simulator) handleKFSendMsgOnEvent(w http.ResponseWriter, r *http.Request, c *call) error {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	code, _ := body["code"].(string)
	msgType, _ := body["msgtype"].(string)
	msgID, _ := body["msgid"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	kc, ok := s.kf.codes[code]
	if !ok || kc.used || !c.now.Before(kc.expiresAt) {
		return wxErr(s.cfg.Rules.KFEventCodeCode, "invalid code")
	}
	sess := s.kfSessionLocked(kc.session.openKfID, kc.session.externalUserID, c.now)
	if kc.state >= 0 && sess.state != kc.state {
		return wxErr(s.cfg.Rules.KFEventCodeCode, "invalid code: session state changed")
	}
	if msgType != "text" && !(msgType == "msgmenu" && kc.menu) {
		return wxErr(errInvalidMsgType, "invalid message type for this code")
	}
	content, err := s.kfContentLocked(msgType, body, c.now)
	if err != nil {
		return err
	}
	kc.used = true
	id := s.kfDeliverLocked(sess, "send_msg_on_event", msgType, content, msgID, c.now)
	writeJSON(w, http.StatusOK, struct {
		errBody
		MsgID string `json:"msgid"`
	}{okBody(), id})
	return nil
}

// handleKFStateGet: POST /cgi-bin/kf/service_state/get.
func (s *Simulator) handleKFStateGet(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		OpenKfID       string `json:"open_kfid"`
		ExternalUserID string `json:"external_userid"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.kfAccountLocked(req.OpenKfID); err != nil {
		return err
	}
	if _, ok := s.kf.customers[req.ExternalUserID]; !ok {
		return wxErr(40096, "invalid external userid")
	}
	sess := s.kfSessionLocked(req.OpenKfID, req.ExternalUserID, c.now)
	writeJSON(w, http.StatusOK, struct {
		errBody
		State    int    `json:"service_state"`
		Servicer string `json:"servicer_userid"`
	}{okBody(), sess.state, sess.servicer})
	return nil
}

// kfTransitions is the documented table (§2.6); 0/1/2 → 4 is added unless
// Rules.KFStrictEnd.
func kfAllowed(from, to int, strictEnd bool) bool {
	switch from {
	case KFStateNew:
		return to == 1 || to == 2 || to == 3 || (to == 4 && !strictEnd)
	case KFStateAssistant:
		return to == 2 || to == 3 || (to == 4 && !strictEnd)
	case KFStatePool:
		return to == 3 || (to == 4 && !strictEnd)
	case KFStateServicer:
		return to == 3 || to == 4
	}
	return false
}

// handleKFStateTrans: POST /cgi-bin/kf/service_state/trans (rule S13).
func (s *Simulator) handleKFStateTrans(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		OpenKfID       string `json:"open_kfid"`
		ExternalUserID string `json:"external_userid"`
		ServiceState   int    `json:"service_state"`
		ServicerUserID string `json:"servicer_userid"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.kfAccountLocked(req.OpenKfID); err != nil {
		return err
	}
	if _, ok := s.kf.customers[req.ExternalUserID]; !ok {
		return wxErr(40096, "invalid external userid")
	}
	sess := s.kfSessionLocked(req.OpenKfID, req.ExternalUserID, c.now)
	to := req.ServiceState
	if !kfAllowed(sess.state, to, s.cfg.Rules.KFStrictEnd) {
		return wxErr(s.cfg.Rules.KFTransitionCode, "service state transition %d→%d not allowed", sess.state, to)
	}
	servicer := ""
	if to == KFStateServicer {
		m, err := s.staffLocked(req.ServicerUserID)
		if err != nil || !s.kf.receiving[strings.ToLower(req.ServicerUserID)] {
			return wxErr(s.cfg.Rules.KFServicerCode, "servicer_userid is not a receiving servicer")
		}
		servicer = m.userID
	}
	from := sess.state
	sess.state, sess.servicer = to, servicer
	// A msg_code comes with the first entry into 2 or 3, and with 4.
	msgCode := ""
	switch {
	case to == KFStateEnded:
		msgCode = s.kfIssueCodeLocked(sess, to, s.cfg.Rules.KFWelcomeCodeTTL, true, c.now)
	case (to == KFStatePool || to == KFStateServicer) && from != to && from < KFStatePool:
		msgCode = s.kfIssueCodeLocked(sess, to, s.cfg.Rules.KFStateCodeTTL, false, c.now)
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		MsgCode string `json:"msg_code,omitempty"`
	}{okBody(), msgCode})
	return nil
}

// handleKFAccountList: POST /cgi-bin/kf/account/list.
func (s *Simulator) handleKFAccountList(w http.ResponseWriter, r *http.Request, c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	type account struct {
		OpenKfID string `json:"open_kfid"`
		Name     string `json:"name"`
		Avatar   string `json:"avatar"`
	}
	list := []account{}
	for _, id := range s.kf.order {
		list = append(list, account{id, s.kf.accounts[id].Name, ""})
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		AccountList []account `json:"account_list"`
	}{okBody(), list})
	return nil
}

// handleKFCustomerBatchGet: POST /cgi-bin/kf/customer/batchget.
func (s *Simulator) handleKFCustomerBatchGet(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		ExternalUserIDList []string `json:"external_userid_list"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type cust struct {
		ExternalUserID string `json:"external_userid"`
		Nickname       string `json:"nickname"`
		Avatar         string `json:"avatar"`
		Gender         int    `json:"gender"`
		UnionID        string `json:"unionid"`
	}
	list, invalid := []cust{}, []string{}
	for _, id := range req.ExternalUserIDList {
		if nick, ok := s.kf.customers[id]; ok {
			if nick == "" {
				nick = "微信用户"
			}
			list = append(list, cust{ExternalUserID: id, Nickname: nick})
		} else {
			invalid = append(invalid, id)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		errBody
		CustomerList       []cust   `json:"customer_list"`
		InvalidExternalIDs []string `json:"invalid_external_userid"`
	}{okBody(), list, invalid})
	return nil
}
