package wecom

import (
	"errors"
	"os"
	"testing"
)

func TestParseMessageCaptured(t *testing.T) {
	tests := []struct{ file, kind, dedupe, from string }{
		{"app_text.xml", "text", "msg:1234567890123456", "ZhangSan"},
		{"app_voice.xml", "voice", "msg:1234567890123457", "ZhangSan"},
		{"app_enter_agent.xml", "event:enter_agent", "event:ZhangSan:1764057602:enter_agent", "ZhangSan"},
	}
	for _, tt := range tests {
		b, err := os.ReadFile("testdata/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if m.Kind() != tt.kind || m.DedupeKey() != tt.dedupe || m.FromUserName != tt.from || m.AgentID != 1000002 {
			t.Errorf("%s: %+v", tt.file, m)
		}
	}
	b, _ := os.ReadFile("testdata/app_text.xml")
	m, _ := ParseMessage(b)
	if m.Content != "#A7 把绕线轮的摇臂顺时针拧紧就好" || m.ToUserName != "ww1436e0e65a779aee" {
		t.Errorf("text fields: %+v", m)
	}
}

func TestParseRejects(t *testing.T) {
	for name, body := range map[string]string{
		"empty":        "",
		"json":         `{"a":1}`,
		"no to":        `<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>`,
		"no msgid":     `<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>`,
		"bad time":     `<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>x</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>`,
		"event bare":   `<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>`,
		"unterminated": `<xml><ToUserName>c`,
	} {
		if _, err := ParseMessage([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if _, err := ParseEnvelope([]byte(`<xml><ToUserName>c</ToUserName></xml>`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("envelope without Encrypt: %v", err)
	}
	e, err := ParseEnvelope([]byte("<xml><ToUserName><![CDATA[ww1]]></ToUserName><AgentID><![CDATA[ 1000002 ]]></AgentID><Encrypt><![CDATA[e]]></Encrypt></xml>"))
	if err != nil || e.AgentID != "1000002" || e.ToUserName != "ww1" {
		t.Errorf("envelope: %+v %v", e, err)
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, name := range []string{"app_text.xml", "app_enter_agent.xml"} {
		b, _ := os.ReadFile("testdata/" + name)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unclassed error: %v", err)
			}
			return
		}
		if m.ToUserName == "" || m.FromUserName == "" || m.DedupeKey() == "" {
			t.Fatalf("accepted incomplete: %+v", m)
		}
	})
}
