// Package wechat talks to the WeChat mini-program platform: the API client
// (on silenceper/wechat/v2) and the message push it sends to
// /callbacks/wechat.
package wechat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
)

// Envelope is the outer body of a safe-mode push: the receiver's original id
// and the ciphertext.
type Envelope struct {
	ToUserName string `xml:"ToUserName" json:"ToUserName"`
	Encrypt    string `xml:"Encrypt" json:"Encrypt"`
}

// PushMessage is a decrypted mini-program push: a customer-service message
// or an event.
type PushMessage struct {
	ToUserName   string `xml:"ToUserName" json:"ToUserName"`
	FromUserName string `xml:"FromUserName" json:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime" json:"CreateTime"`
	MsgType      string `xml:"MsgType" json:"MsgType"`
	MsgID        int64  `xml:"MsgId" json:"MsgId"`
	Content      string `xml:"Content" json:"Content"`
	PicURL       string `xml:"PicUrl" json:"PicUrl"`
	MediaID      string `xml:"MediaId" json:"MediaId"`
	Format       string `xml:"Format" json:"Format"` // voice: amr
	Title        string `xml:"Title" json:"Title"`
	AppID        string `xml:"AppId" json:"AppId"`
	PagePath     string `xml:"PagePath" json:"PagePath"`
	ThumbURL     string `xml:"ThumbUrl" json:"ThumbUrl"`
	ThumbMediaID string `xml:"ThumbMediaId" json:"ThumbMediaId"`
	Event        string `xml:"Event" json:"Event"`
	SessionFrom  string `xml:"SessionFrom" json:"SessionFrom"`
}

// ErrMalformed wraps every parse failure: the body is not a push we can read.
var ErrMalformed = errors.New("wechat: malformed push")

// format tells XML from JSON by the first significant byte: WeChat sends the
// format chosen in the console, and a proxy may drop the Content-Type.
// It returns the body without a leading byte-order mark or blank space.
func format(body []byte) (trimmed []byte, isJSON bool, err error) {
	trimmed = bytes.TrimLeft(body, " \t\r\n\ufeff")
	switch {
	case len(trimmed) == 0:
		return nil, false, fmt.Errorf("%w: empty body", ErrMalformed)
	case trimmed[0] == '<':
		return trimmed, false, nil
	case trimmed[0] == '{':
		return trimmed, true, nil
	}
	return nil, false, fmt.Errorf("%w: neither XML nor JSON", ErrMalformed)
}

func decode(body []byte, v any) error {
	body, isJSON, err := format(body)
	if err != nil {
		return err
	}
	if isJSON {
		err = json.Unmarshal(body, v)
	} else {
		err = xml.Unmarshal(body, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ParseEnvelope reads the outer body of a safe-mode push (XML or JSON).
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := decode(body, &e); err != nil {
		return e, err
	}
	if e.Encrypt == "" {
		return e, fmt.Errorf("%w: no Encrypt field (is the push in safe mode?)", ErrMalformed)
	}
	return e, nil
}

// ParsePush reads a decrypted push and checks the fields every push has.
func ParsePush(plain []byte) (*PushMessage, error) {
	var m PushMessage
	if err := decode(plain, &m); err != nil {
		return nil, err
	}
	switch {
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

// DedupeKey identifies a push across WeChat's redeliveries: the MsgId for
// messages, sender+CreateTime+event for events (which have no MsgId).
func (m *PushMessage) DedupeKey() string {
	if m.MsgType == "event" {
		return "event:" + m.FromUserName + ":" + strconv.FormatInt(m.CreateTime, 10) + ":" + m.Event
	}
	return "msg:" + strconv.FormatInt(m.MsgID, 10)
}

// Kind is the message type, or "event:<name>".
func (m *PushMessage) Kind() string {
	if m.MsgType == "event" {
		return "event:" + m.Event
	}
	return m.MsgType
}
