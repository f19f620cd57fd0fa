package wechat

import (
	"errors"
	"os"
	"testing"
)

func TestParsePushCaptured(t *testing.T) {
	tests := []struct {
		file, kind, dedupe string
		check              func(t *testing.T, m *PushMessage)
	}{
		{"push_text.xml", "text", "msg:24589012345678901", func(t *testing.T, m *PushMessage) {
			if m.Content != "鱼竿卡住了怎么办" || m.FromUserName != "oia2TjjewbmiOUlr6X-1crbLOvLw" || m.CreateTime != 1764057600 {
				t.Errorf("%+v", m)
			}
		}},
		{"push_image.xml", "image", "msg:24589012345678902", func(t *testing.T, m *PushMessage) {
			if m.MediaID != "MEDIA_ID_1" || m.PicURL == "" {
				t.Errorf("%+v", m)
			}
		}},
		{"push_voice.xml", "voice", "msg:24589012345678903", func(t *testing.T, m *PushMessage) {
			if m.MediaID != "MEDIA_ID_2" || m.Format != "amr" {
				t.Errorf("%+v", m)
			}
		}},
		{"push_enter.xml", "event:user_enter_tempsession", "event:oia2TjjewbmiOUlr6X-1crbLOvLw:1764057603:user_enter_tempsession", func(t *testing.T, m *PushMessage) {
			if m.SessionFrom != "quickhelp:reel" {
				t.Errorf("%+v", m)
			}
		}},
		{"push_text.json", "text", "msg:9223372036854775806", func(t *testing.T, m *PushMessage) {
			if m.Content != "有没有适合钓鲫鱼的竿子?" {
				t.Errorf("%+v", m)
			}
		}},
		{"push_miniprogrampage.json", "miniprogrampage", "msg:24589012345678905", func(t *testing.T, m *PushMessage) {
			if m.PagePath != "pages/item/item?id=12" || m.Title == "" {
				t.Errorf("%+v", m)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParsePush(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind() != tt.kind || m.DedupeKey() != tt.dedupe {
				t.Errorf("kind %q dedupe %q, want %q %q", m.Kind(), m.DedupeKey(), tt.kind, tt.dedupe)
			}
			tt.check(t, m)
		})
	}
}

func TestParsePushRejects(t *testing.T) {
	bad := map[string]string{
		"empty":            "",
		"garbage":          "hello",
		"broken xml":       "<xml><FromUserName>x",
		"broken json":      `{"FromUserName":`,
		"no sender":        `{"CreateTime":1,"MsgType":"text","MsgId":1}`,
		"no time":          `{"FromUserName":"o","MsgType":"text","MsgId":1}`,
		"no type":          `{"FromUserName":"o","CreateTime":1,"MsgId":1}`,
		"message no id":    `{"FromUserName":"o","CreateTime":1,"MsgType":"text"}`,
		"event no name":    `<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>`,
		"wrong type field": `{"FromUserName":"o","CreateTime":"soon","MsgType":"text","MsgId":1}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePush([]byte(body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	for _, body := range []string{
		`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>`,
		`{"ToUserName":"gh_1","Encrypt":"abc"}`,
		"\ufeff  " + `{"ToUserName":"gh_1","Encrypt":"abc"}`,
	} {
		e, err := ParseEnvelope([]byte(body))
		if err != nil || e.Encrypt != "abc" || e.ToUserName != "gh_1" {
			t.Errorf("%q: %+v %v", body, e, err)
		}
	}
	if _, err := ParseEnvelope([]byte(`{"ToUserName":"gh_1","Content":"plain"}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("plaintext push accepted as envelope: %v", err)
	}
}

func FuzzParsePush(f *testing.F) {
	for _, name := range []string{"push_text.xml", "push_enter.xml", "push_text.json"} {
		b, _ := os.ReadFile("testdata/" + name)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParsePush(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not classed as malformed: %v", err)
			}
			return
		}
		if m.FromUserName == "" || m.MsgType == "" || m.DedupeKey() == "" {
			t.Fatalf("accepted a push without required fields: %+v", m)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`<xml><ToUserName>gh</ToUserName><Encrypt>x</Encrypt></xml>`))
	f.Add([]byte(`{"Encrypt":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEnvelope(body)
		if err == nil && e.Encrypt == "" {
			t.Fatal("accepted an envelope without Encrypt")
		}
	})
}
