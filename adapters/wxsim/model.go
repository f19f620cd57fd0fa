package wxsim

import (
	"maps"
	"slices"
	"time"
)

// Customer is a WeChat user of the mini-program.
type Customer struct {
	OpenID   string `json:"openid"`
	UnionID  string `json:"unionid,omitempty"` // returned by jscode2session only when set
	Nickname string `json:"nickname,omitempty"`
}

// CustomerInfo is a customer as the simulator sees them, including the
// customer-service reply window and subscribe consents.
type CustomerInfo struct {
	Customer
	Phone       string         `json:"phone,omitempty"`
	WindowUntil time.Time      `json:"window_until"` // zero: never opened
	WindowLeft  int            `json:"window_left"`  // sends left before 45047
	Typing      bool           `json:"typing"`
	Consents    map[string]int `json:"consents"` // template_id → sends left
}

type customer struct {
	Customer
	sessionKey  string
	phone       string
	windowUntil time.Time
	windowLeft  int
	typing      bool
	consents    map[string]int
	delivered   []CustomerDelivery
}

func (c *customer) info() CustomerInfo {
	return CustomerInfo{
		Customer:    c.Customer,
		Phone:       c.phone,
		WindowUntil: c.windowUntil,
		WindowLeft:  c.windowLeft,
		Typing:      c.typing,
		Consents:    maps.Clone(c.consents),
	}
}

// CustomerDelivery is a message the shop sent to a customer and WeChat
// accepted: a customer-service message (Kind "custom") or a subscribe
// message (Kind "subscribe").
type CustomerDelivery struct {
	Seq        int               `json:"seq"`
	Kind       string            `json:"kind"`
	MsgType    string            `json:"msgtype"` // custom: text|image|link|miniprogrampage; subscribe: "subscribe"
	Text       string            `json:"text,omitempty"`
	MediaID    string            `json:"media_id,omitempty"`
	MediaURL   string            `json:"media_url,omitempty"` // control-API URL of the bytes (kept after the media expires)
	Media      []byte            `json:"-"`
	MediaType  string            `json:"media_type,omitempty"`
	Link       *LinkCard         `json:"link,omitempty"`
	Page       *PageCard         `json:"miniprogrampage,omitempty"`
	TemplateID string            `json:"template_id,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	PagePath   string            `json:"page,omitempty"`
	MsgID      int64             `json:"msgid,omitempty"`
	At         time.Time         `json:"at"`
}

// LinkCard is a customer-service link message.
type LinkCard struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url"`
	ThumbURL    string `json:"thumb_url"`
}

// PageCard is a mini-program page card (sent or received).
type PageCard struct {
	Title        string `json:"title"`
	PagePath     string `json:"pagepath"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
}

type staffMember struct {
	userID string
	sent   []time.Time // accepted app messages, for the 30/min and 1000/h limits
	inbox  []WeComDelivery
}

// WeComDelivery is an app message that reached a staff member.
type WeComDelivery struct {
	Seq      int       `json:"seq"`
	MsgID    string    `json:"msgid"`
	MsgType  string    `json:"msgtype"`
	Content  string    `json:"content,omitempty"` // text, markdown
	TextCard *TextCard `json:"textcard,omitempty"`
	MediaID  string    `json:"media_id,omitempty"`
	MediaURL string    `json:"media_url,omitempty"`
	Media    []byte    `json:"-"`
	Safe     bool      `json:"safe,omitempty"`
	At       time.Time `json:"at"`
}

// TextCard is a WeCom textcard message.
type TextCard struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url"`
	BtnTxt      string `json:"btntxt,omitempty"`
}

// AppSend records one accepted WeCom message/send call, including the
// recipients whose copy was silently dropped by the per-member limits.
type AppSend struct {
	MsgID        string    `json:"msgid"`
	MsgType      string    `json:"msgtype"`
	Delivered    []string  `json:"delivered"`
	Dropped      []string  `json:"dropped,omitempty"`
	InvalidUser  string    `json:"invaliduser,omitempty"`
	InvalidParty string    `json:"invalidparty,omitempty"`
	InvalidTag   string    `json:"invalidtag,omitempty"`
	At           time.Time `json:"at"`
}

// Message is something a customer (in WeChat) or a staff member (in the
// WeCom app) sends; the simulator turns it into a push to the gateway.
type Message struct {
	// Type is text, image, voice, miniprogrampage (customers only) or event.
	Type     string `json:"type"`
	Content  string `json:"content,omitempty"`
	Data     []byte `json:"data,omitempty"` // image or voice bytes; a placeholder is used when empty
	Filename string `json:"filename,omitempty"`
	// miniprogrampage
	Title     string `json:"title,omitempty"`
	PagePath  string `json:"pagepath,omitempty"`
	ThumbData []byte `json:"thumb_data,omitempty"`
	// event: user_enter_tempsession (customers, with SessionFrom) or enter_agent (staff)
	Event       string `json:"event,omitempty"`
	SessionFrom string `json:"session_from,omitempty"`
}

// Message types and events customers and staff can send.
const (
	MsgText                   = "text"
	MsgImage                  = "image"
	MsgVoice                  = "voice"
	MsgMiniProgramPage        = "miniprogrampage"
	MsgEvent                  = "event"
	EventUserEnterTempSession = "user_enter_tempsession"
	EventEnterAgent           = "enter_agent"
)

// TextMessage is a text message.
func TextMessage(content string) Message { return Message{Type: MsgText, Content: content} }

// ImageMessage is an image message; data is the picture (JPEG or PNG).
func ImageMessage(data []byte) Message { return Message{Type: MsgImage, Data: data} }

// VoiceMessage is a voice message; data is AMR audio.
func VoiceMessage(data []byte) Message { return Message{Type: MsgVoice, Data: data} }

// PageMessage is a mini-program page card shared into the chat.
func PageMessage(title, pagePath string) Message {
	return Message{Type: MsgMiniProgramPage, Title: title, PagePath: pagePath}
}

// EnterSession is the customer opening the customer-service chat from a
// <button open-type="contact" session-from="…">.
func EnterSession(sessionFrom string) Message {
	return Message{Type: MsgEvent, Event: EventUserEnterTempSession, SessionFrom: sessionFrom}
}

// EnterAgent is a staff member opening the WeCom app.
func EnterAgent() Message { return Message{Type: MsgEvent, Event: EventEnterAgent} }

// Push is one callback from the simulator to the gateway and its outcome.
type Push struct {
	ID         int           `json:"id"`
	Target     string        `json:"target"` // PushWeChat or PushWeCom
	From       string        `json:"from"`   // openid or userid
	MsgType    string        `json:"msgtype"`
	Event      string        `json:"event,omitempty"`
	MsgID      int64         `json:"msgid,omitempty"` // 0 for events (dedupe on From+CreateTime)
	CreateTime int64         `json:"create_time"`
	At         time.Time     `json:"at"`        // simulator time the user sent it (CreateTime has whole seconds only)
	Plaintext  string        `json:"plaintext"` // the message before encryption
	MediaID    string        `json:"media_id,omitempty"`
	URL        string        `json:"url,omitempty"`
	Attempts   []PushAttempt `json:"attempts"`
	Outcome    string        `json:"outcome"`         // see Outcome* constants
	Reply      string        `json:"reply,omitempty"` // WeCom: decrypted passive reply, if any
}

// Push outcomes.
const (
	OutcomePending   = "pending"
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"  // every attempt failed
	OutcomeDropped   = "dropped" // DropPush fault: never sent
	OutcomeNoURL     = "no_url"  // no callback URL configured
)

// Delivered reports whether the gateway acknowledged the push.
func (p Push) Delivered() bool { return p.Outcome == OutcomeDelivered }

// PushAttempt is one HTTP request of a push.
type PushAttempt struct {
	At       time.Time     `json:"at"`
	Status   int           `json:"status,omitempty"`
	Body     string        `json:"body,omitempty"` // first 256 bytes of the reply
	Err      string        `json:"error,omitempty"`
	OK       bool          `json:"ok"`
	Duration time.Duration `json:"duration"`
}

func (p *Push) clone() Push {
	c := *p
	c.Attempts = slices.Clone(p.Attempts)
	return c
}

// oneTimeCode is a js_code, phone code or WeCom OAuth code.
type oneTimeCode struct {
	subject   string // openid or userid
	phone     string
	appID     string
	issuedAt  time.Time
	expiresAt time.Time
	used      bool
}

// Code kinds (map key prefixes).
const (
	codeJS    = "js:"
	codePhone = "phone:"
	codeOAuth = "oauth:"
)
