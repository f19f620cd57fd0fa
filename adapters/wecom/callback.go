// Package wecom talks to WeCom (企业微信): the self-built app's API client
// (on silenceper/wechat/v2 work/*) and the callbacks WeCom sends to
// /callbacks/wecom.
package wecom

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Envelope is the outer XML of a WeCom callback.
type Envelope struct {
	ToUserName string `xml:"ToUserName"` // the CorpID
	AgentID    string `xml:"AgentID"`
	Encrypt    string `xml:"Encrypt"`
}

// Message is a decrypted WeCom app callback: a member's message to the app
// or an event.
type Message struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"` // the member's userid
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	MsgID        int64  `xml:"MsgId"`
	AgentID      int64  `xml:"AgentID"`
	Content      string `xml:"Content"`
	PicURL       string `xml:"PicUrl"`
	MediaID      string `xml:"MediaId"`
	Format       string `xml:"Format"`
	ThumbMediaID string `xml:"ThumbMediaId"`
	Event        string `xml:"Event"`
	EventKey     string `xml:"EventKey"`
}

// ErrMalformed wraps every parse failure.
var ErrMalformed = errors.New("wecom: malformed callback")

// ParseEnvelope reads the outer XML.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := xml.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e.ToUserName, e.AgentID = strings.TrimSpace(e.ToUserName), strings.TrimSpace(e.AgentID)
	if e.Encrypt == "" {
		return e, fmt.Errorf("%w: no Encrypt field", ErrMalformed)
	}
	return e, nil
}

// ParseMessage reads a decrypted callback and checks the fields every
// callback has.
func ParseMessage(plain []byte) (*Message, error) {
	var m Message
	if err := xml.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case m.ToUserName == "":
		return nil, fmt.Errorf("%w: no ToUserName", ErrMalformed)
	case m.FromUserName == "":
		return nil, fmt.Errorf("%w: no FromUserName", ErrMalformed)
	case m.CreateTime <= 0:
		return nil, fmt.Errorf("%w: no CreateTime", ErrMalformed)
	case m.MsgType == "":
		return nil, fmt.Errorf("%w: no MsgType", ErrMalformed)
	case m.MsgType == "event" && m.Event == "":
		return nil, fmt.Errorf("%w: event without Event", ErrMalformed)
	case m.MsgType != "event" && m.MsgID == 0:
		return nil, fmt.Errorf("%w: message without MsgId", ErrMalformed)
	}
	return &m, nil
}

// DedupeKey identifies a callback across WeCom's retries.
func (m *Message) DedupeKey() string {
	if m.MsgType == "event" {
		return "event:" + m.FromUserName + ":" + strconv.FormatInt(m.CreateTime, 10) + ":" + m.Event
	}
	return "msg:" + strconv.FormatInt(m.MsgID, 10)
}

// Kind is the message type, or "event:<name>".
func (m *Message) Kind() string {
	if m.MsgType == "event" {
		return "event:" + m.Event
	}
	return m.MsgType
}
