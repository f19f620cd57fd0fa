package gateway

import (
	"bytes"
	"mime/multipart"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// FuzzReadChatUpload: whatever a client uploads (a file of any bytes and
// type, any duration, any text), the chat's reader accepts it as a valid
// message or refuses it as invalid; it never fails otherwise.
func FuzzReadChatUpload(f *testing.F) {
	f.Add([]byte("#!AMR\n\x3c"), "audio/amr", "", "")
	f.Add(append([]byte{0x1A, 0x45, 0xDF, 0xA3}, 1, 2, 3), "audio/webm", "4200", "")
	f.Add([]byte("\x89PNG\r\n\x1a\n"), "image/png", "", "")
	f.Add([]byte("OggS"), "video/webm", "-1", "")
	f.Add([]byte(nil), "", "", `{"text":"鱼竿"}`)
	f.Add([]byte(nil), "", "", `{"text":`)
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		if rental.ErrorKind(err) == rental.KindInvalid {
			return c.SendStatus(400)
		}
		return c.SendStatus(500)
	}})
	app.Post("/x", func(c *fiber.Ctx) error {
		u, err := readChatUpload(c, "fuzz")
		if err != nil {
			return err
		}
		m := rental.ChatMessage{ConversationID: 1, Direction: rental.ChatIn, Kind: u.Kind, Author: "customer:1", Text: u.Text, Media: u.Media,
			MediaType: u.MediaType, Duration: u.Duration}
		m.CreatedAt = m.CreatedAt.AddDate(2026, 0, 0)
		if _, err := m.Chain(rental.NewConversationHead()); err != nil {
			return err // an accepted upload must make a valid message
		}
		return c.SendStatus(201)
	})
	f.Fuzz(func(t *testing.T, data []byte, contentType, duration, jsonBody string) {
		for _, r := range contentType + duration {
			if r < 0x20 || r == 0x7f || r == '"' {
				t.Skip("not a header value an HTTP client can send")
			}
		}
		var req *httptestRequest
		if jsonBody != "" {
			req = newJSONRequest(jsonBody)
		} else {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			w.WriteField("duration_ms", duration) //nolint:errcheck
			h := make(map[string][]string)
			h["Content-Disposition"] = []string{`form-data; name="file"; filename="f"`}
			if contentType != "" {
				h["Content-Type"] = []string{contentType}
			}
			fw, _ := w.CreatePart(h)
			fw.Write(data) //nolint:errcheck
			w.Close()
			req = &httptestRequest{body: b.Bytes(), contentType: w.FormDataContentType()}
		}
		r := httptest.NewRequest("POST", "/x", bytes.NewReader(req.body))
		r.Header.Set("Content-Type", req.contentType)
		resp, err := app.Test(r, -1)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 201 && resp.StatusCode != 400 {
			t.Fatalf("status %d for %q (%s, duration %q)", resp.StatusCode, data, contentType, duration)
		}
	})
}

type httptestRequest struct {
	body        []byte
	contentType string
}

func newJSONRequest(s string) *httptestRequest {
	return &httptestRequest{body: []byte(s), contentType: "application/json"}
}
