package wxsim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file is the outside world: what customers and staff do in their apps,
// and what a test or the /sim page can inspect afterwards.

func (s *Simulator) addCustomerLocked(c Customer) *customer {
	if cust, ok := s.customers[c.OpenID]; ok {
		if c.UnionID != "" {
			cust.UnionID = c.UnionID
		}
		if c.Nickname != "" {
			cust.Nickname = c.Nickname
		}
		return cust
	}
	if c.OpenID == "" {
		c.OpenID = "o" + randomString(27, idChars)
	}
	cust := &customer{Customer: c, consents: map[string]int{}}
	s.customers[c.OpenID] = cust
	s.custOrder = append(s.custOrder, c.OpenID)
	return cust
}

// AddCustomer creates a customer (a random openid when c.OpenID is empty) or
// updates the unionid/nickname of an existing one.
func (s *Simulator) AddCustomer(c Customer) CustomerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addCustomerLocked(c).info()
}

// Login is the customer opening the mini-program: wx.login yields a js_code
// for jscode2session. The customer is created if new.
func (s *Simulator) Login(openID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cust := s.addCustomerLocked(Customer{OpenID: openID})
	return s.issueCodeLocked(codeJS, cust.OpenID)
}

// PhoneCode is the customer tapping a getPhoneNumber button and agreeing:
// the code is exchanged by getuserphonenumber. phone is "13800000000" or,
// for other countries, "+852 51234567".
func (s *Simulator) PhoneCode(openID, phone string) (string, error) {
	if phone == "" {
		return "", errors.New("wxsim: phone is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cust, ok := s.customers[openID]
	if !ok {
		return "", fmt.Errorf("wxsim: unknown customer %q", openID)
	}
	cust.phone = phone
	value := s.issueCodeLocked(codePhone, openID)
	s.codes[codePhone+value].phone = phone
	return value, nil
}

// GrantSubscribe is the customer accepting wx.requestSubscribeMessage n times
// for templateID: each acceptance allows one subscribe message.
func (s *Simulator) GrantSubscribe(openID, templateID string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cust, ok := s.customers[openID]
	if !ok {
		return fmt.Errorf("wxsim: unknown customer %q", openID)
	}
	if _, ok := s.cfg.SubscribeTemplates[templateID]; !ok {
		return fmt.Errorf("wxsim: unknown template %q", templateID)
	}
	if n < 1 {
		return fmt.Errorf("wxsim: grant count must be positive")
	}
	cust.consents[templateID] += n
	return nil
}

// OAuthCode is a staff member opening an OAuth link inside WeCom: the code
// the redirect carries, for auth/getuserinfo.
func (s *Simulator) OAuthCode(userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.staffLocked(userID)
	if err != nil {
		return "", err
	}
	return s.issueCodeLocked(codeOAuth, m.userID), nil
}

// InvalidateTokens revokes every access token of both hosts, as the servers
// sometimes do before expiry: the next business call gets 40001 (mini-program)
// or 40014 (WeCom), and the token endpoints issue new ones.
func (s *Simulator) InvalidateTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens.revokeAll()
}

// CustomerSends is a customer writing in the mini-program's customer-service
// chat (or entering it). It opens the reply window, stores any media so that
// media/get works, and pushes the message to PushURL, returning the record.
func (s *Simulator) CustomerSends(ctx context.Context, openID string, m Message) (Push, error) {
	s.mu.Lock()
	cust := s.addCustomerLocked(Customer{OpenID: openID})
	now := s.clock.Now()
	fields, p, err := s.customerFieldsLocked(cust, m, now)
	if err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	format, mode := s.pushFormat, s.pushMode
	p.Plaintext = render(format, fields)
	p.URL = s.pushURL
	s.openWindowForLocked(cust, m, now)
	s.recordPushLocked(p)
	s.mu.Unlock()

	s.runPush(ctx, pushJob{
		push: p,
		build: func(at time.Time) (envelope, error) {
			return s.mpEnvelope(p.URL, format, mode, fields, at)
		},
		judge: judgeWeChat,
	})
	return s.pushSnapshot(p), nil
}

func (s *Simulator) openWindowForLocked(cust *customer, m Message, now time.Time) {
	if m.Type == MsgEvent {
		openWindowLocked(cust, now, s.cfg.Rules.EnterWindow, s.cfg.Rules.EnterQuota)
		return
	}
	openWindowLocked(cust, now, s.cfg.Rules.ReplyWindow, s.cfg.Rules.ReplyQuota)
}

func (s *Simulator) recordPushLocked(p *Push) {
	p.ID = len(s.pushes) + 1
	p.Outcome = OutcomePending
	s.pushes = append(s.pushes, p)
}

func (s *Simulator) pushSnapshot(p *Push) Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.clone()
}

// customerFieldsLocked builds the plaintext of a customer message (§1.7).
func (s *Simulator) customerFieldsLocked(cust *customer, m Message, now time.Time) ([]field, *Push, error) {
	p := &Push{Target: PushWeChat, From: cust.OpenID, MsgType: m.Type, CreateTime: now.Unix(), At: now}
	fields := []field{
		str("ToUserName", s.cfg.OriginalID),
		str("FromUserName", cust.OpenID),
		num("CreateTime", p.CreateTime),
		str("MsgType", m.Type),
	}
	switch m.Type {
	case MsgText:
		if m.Content == "" {
			return nil, nil, errors.New("wxsim: empty text message")
		}
		fields = append(fields, str("Content", m.Content))
	case MsgImage:
		obj, err := s.customerMediaLocked("image", m.Data, m.Filename, now)
		if err != nil {
			return nil, nil, err
		}
		p.MediaID = obj.id
		fields = append(fields, str("PicUrl", s.publicURL+PrefixSim+"/api/media/"+obj.id), str("MediaId", obj.id))
	case MsgVoice:
		// Mini-program customer service does not document voice messages;
		// official accounts push them in this shape, and the gateway accepts
		// voice, so the simulator sends it the official-account way.
		obj, err := s.customerMediaLocked("voice", m.Data, m.Filename, now)
		if err != nil {
			return nil, nil, err
		}
		p.MediaID = obj.id
		fields = append(fields, str("MediaId", obj.id), str("Format", "amr"))
	case MsgMiniProgramPage:
		if m.Title == "" || m.PagePath == "" {
			return nil, nil, errors.New("wxsim: miniprogrampage needs a title and a pagepath")
		}
		thumb, err := s.customerMediaLocked("image", m.ThumbData, "thumb.png", now)
		if err != nil {
			return nil, nil, err
		}
		p.MediaID = thumb.id
		fields = append(fields,
			str("Title", m.Title), str("AppId", s.cfg.AppID), str("PagePath", m.PagePath),
			str("ThumbUrl", s.publicURL+PrefixSim+"/api/media/"+thumb.id), str("ThumbMediaId", thumb.id))
	case MsgEvent:
		if m.Event != EventUserEnterTempSession {
			return nil, nil, fmt.Errorf("wxsim: customers can send only the %s event", EventUserEnterTempSession)
		}
		p.Event = m.Event
		return append(fields, str("Event", m.Event), str("SessionFrom", m.SessionFrom)), p, nil
	default:
		return nil, nil, fmt.Errorf("wxsim: unsupported customer message type %q", m.Type)
	}
	p.MsgID = s.newIDLocked()
	return append(fields, num("MsgId", p.MsgID)), p, nil
}

// customerMediaLocked stores media a customer sent (a placeholder when the
// caller gave no bytes) in the mini-program's media store.
func (s *Simulator) customerMediaLocked(kind string, data []byte, filename string, now time.Time) (*mediaObject, error) {
	if len(data) == 0 {
		data = placeholder(kind)
	}
	contentType := http.DetectContentType(data)
	switch {
	case kind == "voice":
		contentType = "audio/amr"
	case !strings.HasPrefix(contentType, "image/"):
		return nil, fmt.Errorf("wxsim: image data is %s, not an image", contentType)
	}
	if filename == "" {
		filename = mediaFilename(kind, contentType)
	}
	return s.storeMediaLocked(hostWeChat, kind, filename, contentType, data, now), nil
}

// placeholder makes small valid media for messages sent without bytes.
func placeholder(kind string) []byte {
	if kind == "voice" {
		// AMR-NB header and one second of 12.2 kbit/s frames of silence.
		b := []byte("#!AMR\n")
		for range 50 {
			b = append(b, 0x3C)
			b = append(b, make([]byte, 31)...)
		}
		return b
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{R: 0x1e, G: uint8(0x80 + 4*x), B: uint8(0xa0 + 4*y), A: 0xff})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// StaffSends is a staff member writing to (or opening) the WeCom app. The
// message is encrypted and posted to WeComCallbackURL.
func (s *Simulator) StaffSends(ctx context.Context, userID string, m Message) (Push, error) {
	s.mu.Lock()
	member, err := s.staffLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	now := s.clock.Now()
	fields, p, err := s.staffFieldsLocked(member, m, now)
	if err != nil {
		s.mu.Unlock()
		return Push{}, err
	}
	p.Plaintext = renderXML(fields)
	p.URL = s.wecomURL
	s.recordPushLocked(p)
	s.mu.Unlock()

	s.runPush(ctx, pushJob{
		push: p,
		build: func(at time.Time) (envelope, error) {
			return s.weComEnvelope(p.URL, p.Plaintext, at)
		},
		judge: s.judgeWeCom,
	})
	snap := s.pushSnapshot(p)
	if snap.Reply != "" {
		s.deliverPassiveReply(member, snap.Reply)
	}
	return snap, nil
}

func (s *Simulator) staffFieldsLocked(member *staffMember, m Message, now time.Time) ([]field, *Push, error) {
	p := &Push{Target: PushWeCom, From: member.userID, MsgType: m.Type, CreateTime: now.Unix(), At: now}
	fields := []field{
		str("ToUserName", s.cfg.CorpID),
		str("FromUserName", member.userID),
		num("CreateTime", p.CreateTime),
		str("MsgType", m.Type),
	}
	agent := num("AgentID", int64(s.cfg.AgentID))
	switch m.Type {
	case MsgText:
		if m.Content == "" {
			return nil, nil, errors.New("wxsim: empty text message")
		}
		fields = append(fields, str("Content", m.Content))
	case MsgImage, MsgVoice:
		data := m.Data
		if len(data) == 0 {
			data = placeholder(m.Type)
		}
		contentType, err := checkMedia(hostWeCom, m.Type, data)
		if err != nil {
			return nil, nil, fmt.Errorf("wxsim: staff %s: %v", m.Type, err)
		}
		name := m.Filename
		if name == "" {
			name = mediaFilename(m.Type, contentType)
		}
		obj := s.storeMediaLocked(hostWeCom, m.Type, name, contentType, data, now)
		p.MediaID = obj.id
		if m.Type == MsgImage {
			fields = append(fields, str("PicUrl", s.publicURL+PrefixSim+"/api/media/"+obj.id), str("MediaId", obj.id))
		} else {
			fields = append(fields, str("MediaId", obj.id), str("Format", "amr"))
		}
	case MsgEvent:
		if m.Event != EventEnterAgent {
			return nil, nil, fmt.Errorf("wxsim: staff can send only the %s event", EventEnterAgent)
		}
		p.Event = m.Event
		return append(fields, str("Event", m.Event), str("EventKey", ""), agent), p, nil
	default:
		return nil, nil, fmt.Errorf("wxsim: unsupported staff message type %q", m.Type)
	}
	p.MsgID = s.newIDLocked()
	return append(fields, num("MsgId", p.MsgID), agent), p, nil
}

// deliverPassiveReply shows a text passive reply in the member's app chat.
func (s *Simulator) deliverPassiveReply(member *staffMember, plain string) {
	var msg struct {
		MsgType string `xml:"MsgType"`
		Content string `xml:"Content"`
	}
	if xml.Unmarshal([]byte(plain), &msg) != nil || msg.MsgType != MsgText {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	member.inbox = append(member.inbox, WeComDelivery{
		Seq: len(member.inbox) + 1, MsgID: "passive-" + randomString(12, alnum),
		MsgType: MsgText, Content: msg.Content, At: s.clock.Now(),
	})
}

// Customers lists every customer, in creation order.
func (s *Simulator) Customers() []CustomerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CustomerInfo, 0, len(s.custOrder))
	for _, id := range s.custOrder {
		out = append(out, s.customers[id].info())
	}
	return out
}

// Customer returns one customer.
func (s *Simulator) Customer(openID string) (CustomerInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[openID]
	if !ok {
		return CustomerInfo{}, false
	}
	return c.info(), true
}

// StaffUserIDs lists the corp's members.
func (s *Simulator) StaffUserIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.staffOrder))
	for _, key := range s.staffOrder {
		out = append(out, s.staff[key].userID)
	}
	return out
}

// Delivered lists what the shop sent to a customer (customer-service and
// subscribe messages), in order.
func (s *Simulator) Delivered(openID string) []CustomerDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[openID]
	if !ok {
		return nil
	}
	return slices.Clone(c.delivered)
}

// StaffInbox lists the app messages a member received, in order.
func (s *Simulator) StaffInbox(userID string) []WeComDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.staffLocked(userID)
	if err != nil {
		return nil
	}
	return slices.Clone(m.inbox)
}

// AppSends lists every accepted WeCom message/send call.
func (s *Simulator) AppSends() []AppSend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.appSends)
}

// Pushes lists every push to the gateway with its attempts and outcome.
func (s *Simulator) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Push, len(s.pushes))
	for i, p := range s.pushes {
		out[i] = p.clone()
	}
	return out
}

// Media returns the bytes of any media the simulator holds, expired or not
// (for inspection; the APIs enforce expiry).
func (s *Simulator) Media(id string) (data []byte, contentType string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok {
		return nil, "", false
	}
	return m.data, m.contentType, true
}

// SetPushURL changes the mini-program push URL (e.g. once the gateway's
// address is known); empty records pushes without sending them.
func (s *Simulator) SetPushURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushURL = u
}

// SetWeComCallbackURL changes the WeCom callback URL.
func (s *Simulator) SetWeComCallbackURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wecomURL = u
}

// SetPushMode switches the mini-program push mode and data format, as the
// console allows; empty arguments keep the current value.
func (s *Simulator) SetPushMode(mode, format string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cfg
	if mode != "" {
		next.PushMode = mode
	}
	if format != "" {
		next.PushFormat = format
	}
	if err := next.validate(); err != nil {
		return err
	}
	s.pushMode, s.pushFormat = next.PushMode, next.PushFormat
	return nil
}

// PushTargets reports the current callback targets and push mode.
func (s *Simulator) PushTargets() (pushURL, weComURL, mode, format string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushURL, s.wecomURL, s.pushMode, s.pushFormat
}
