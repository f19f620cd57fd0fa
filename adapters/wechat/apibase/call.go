package apibase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/silenceper/wechat/v2/credential"
)

// Hand-written calls, for what silenceper lacks or gets wrong (mini-program
// media, WeCom media/get's Content-Type, token endpoints with a context).
// They build URLs on the real hosts and go through the process client, so
// Register's rewrite applies to them exactly as to silenceper's requests.

// Size limits of answers: JSON answers are small; media are at most 20 MB
// (WeCom files).
const (
	maxJSON  = 1 << 20
	MaxMedia = 20 << 20
)

// URL builds https://host+path?query on the real host.
func URL(host, path string, query url.Values) string {
	u := url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query.Encode()}
	return u.String()
}

// GetJSON GETs rawURL and decodes the answer into out (which may be nil),
// failing with an *Error on a non-zero errcode.
func GetJSON(ctx context.Context, op, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return &Error{Op: op, Err: redacted{err}}
	}
	body, _, err := send(op, req, maxJSON)
	if err != nil {
		return err
	}
	return decode(op, body, out)
}

// PostJSON POSTs in as JSON (HTML characters not escaped, as WeChat expects)
// and decodes the answer into out.
func PostJSON(ctx context.Context, op, rawURL string, in, out any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		return &Error{Op: op, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, &buf)
	if err != nil {
		return &Error{Op: op, Err: redacted{err}}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	body, _, err := send(op, req, maxJSON)
	if err != nil {
		return err
	}
	return decode(op, body, out)
}

// PostFile uploads data as the multipart file field (WeChat and WeCom both
// call it "media") and decodes the answer into out.
func PostFile(ctx context.Context, op, rawURL, field, filename string, data []byte, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	// Quoted as multipart.CreateFormFile does: the servers do not read the
	// RFC 2231 form mime.FormatMediaType would use for a Chinese name.
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, quoteEscaper.Replace(field), quoteEscaper.Replace(filename)))
	h.Set("Content-Type", SniffContentType(data))
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, &buf)
	if err != nil {
		return &Error{Op: op, Err: redacted{err}}
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	body, _, err := send(op, req, maxJSON)
	if err != nil {
		return err
	}
	return decode(op, body, out)
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

// File is a downloaded media file.
type File struct {
	Data        []byte
	ContentType string
	Filename    string // from Content-Disposition, if any
}

// GetFile downloads a media file. The servers answer errors with an errcode
// JSON instead of the bytes, with HTTP 200.
func GetFile(ctx context.Context, op, rawURL string) (File, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return File{}, &Error{Op: op, Err: redacted{err}}
	}
	body, header, err := send(op, req, MaxMedia)
	if err != nil {
		return File{}, err
	}
	ct := header.Get("Content-Type")
	if looksLikeErrcode(ct, body) {
		if err := decode(op, body, nil); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code != 0 {
				return File{}, err
			}
		}
	}
	f := File{Data: body, ContentType: ct}
	if _, params, err := mime.ParseMediaType(header.Get("Content-Disposition")); err == nil {
		f.Filename = params["filename"]
	}
	if f.ContentType == "" {
		f.ContentType = SniffContentType(body)
	}
	return f, nil
}

// looksLikeErrcode: a JSON (or text/plain, as api.weixin.qq.com labels some
// errors) answer that opens with '{'. A media file that is itself JSON is
// returned as a file unless it carries a non-zero errcode.
func looksLikeErrcode(contentType string, body []byte) bool {
	t, _, _ := mime.ParseMediaType(contentType)
	if t != "" && t != "application/json" && t != "text/json" && t != "text/plain" {
		return false
	}
	return len(bytes.TrimLeft(body, " \t\r\n")) > 0 && bytes.TrimLeft(body, " \t\r\n")[0] == '{'
}

// SniffContentType names data's type for an upload; AMR voice, which
// net/http does not know, is recognised by its magic.
func SniffContentType(data []byte) string {
	if bytes.HasPrefix(data, []byte("#!AMR")) {
		return "audio/amr"
	}
	return http.DetectContentType(data)
}

func send(op string, req *http.Request, limit int64) ([]byte, http.Header, error) {
	_, hc := installed()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, &Error{Op: op, Network: true, Err: redacted{err}}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, &Error{Op: op, Network: true, Err: redacted{err}}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &Error{Op: op, HTTPStatus: resp.StatusCode}
	}
	if int64(len(body)) > limit {
		return nil, nil, &Error{Op: op, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	}
	return body, resp.Header, nil
}

func decode(op string, body []byte, out any) error {
	var ce struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		return &Error{Op: op, Err: fmt.Errorf("decode answer: %w", err)}
	}
	if ce.ErrCode != 0 {
		return &Error{Op: op, Code: ce.ErrCode, Msg: ce.ErrMsg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Op: op, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}

// FixedToken hands one access token to a silenceper call. The clients fetch
// the token themselves (token.Source) so that they know which token a call
// used and can invalidate exactly that one.
type FixedToken string

var (
	_ credential.AccessTokenContextHandle = FixedToken("")
	_ credential.AccessTokenHandle        = FixedToken("")
)

// GetAccessToken returns the token.
func (t FixedToken) GetAccessToken() (string, error) { return string(t), nil }

// GetAccessTokenContext returns the token.
func (t FixedToken) GetAccessTokenContext(context.Context) (string, error) { return string(t), nil }
