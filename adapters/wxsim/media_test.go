package wxsim

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestMiniProgramMedia(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	up := withToken(s.WeChatBase(), "/cgi-bin/media/upload", tok)
	png := placeholder("image")

	r := upload(t, up+"&type=image", "rod.png", png)
	if r.str("type") != "image" || r.str("media_id") == "" || r["created_at"] != float64(testEpoch.Unix()) {
		t.Fatalf("upload reply: %v", r)
	}
	id := r.str("media_id")

	for _, tc := range []struct {
		name, query string
		data        []byte
		code        int
	}{
		{"voice not allowed", "&type=voice", placeholder("voice"), errInvalidMediaType},
		{"not an image", "&type=image", []byte("hello, this is text"), errInvalidFileType},
		{"too small", "&type=image", []byte{1, 2}, errInvalidFileSize},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, upload(t, up+tc.query, "f", tc.data), tc.code) })
	}

	get := func(mediaID string) *http.Response {
		t.Helper()
		resp, err := http.Get(withToken(s.WeChatBase(), "/cgi-bin/media/get", tok) + "&media_id=" + mediaID)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(id)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, png) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="rod.png"` {
		t.Fatalf("media/get: %d bytes, headers %v", len(body), resp.Header)
	}

	s.Advance(72*time.Hour - time.Second)
	tok = mpToken(t, s)
	if resp := get(id); resp.Header.Get("Content-Type") != "image/png" {
		t.Fatal("media gone before 3 days")
	} else {
		resp.Body.Close()
	}
	s.Advance(time.Second)
	wantCode(t, "expired media", decodeResp(t, get(id)), errInvalidMediaID)
}

func TestWeComMedia(t *testing.T) {
	s := newSim(t, nil)
	tok := wecomToken(t, s)
	up := withToken(s.WeComBase(), "/cgi-bin/media/upload", tok)
	amr := placeholder("voice")

	r := upload(t, up+"&type=voice", "hello.amr", amr)
	if r.code() != 0 || r.str("type") != "voice" || r["created_at"] != "1780884000" {
		t.Fatalf("upload reply: %v (created_at must be a string)", r)
	}
	id := r.str("media_id")
	wantCode(t, "voice not AMR", upload(t, up+"&type=voice", "x.mp3", []byte("ID3\x03\x00\x00\x00\x00\x00\x00")), errInvalidFileType)
	wantCode(t, "unknown type", upload(t, up+"&type=gif", "x", amr), errInvalidMediaType)
	if r := upload(t, up+"&type=file", "manual.pdf", []byte("%PDF-1.4 fishing manual")); r.code() != 0 {
		t.Errorf("file upload: %v", r)
	}

	// Range requests are served (WeCom documents them).
	req, _ := http.NewRequest(http.MethodGet, withToken(s.WeComBase(), "/cgi-bin/media/get", tok)+"&media_id="+id, nil)
	req.Header.Set("Range", "bytes=0-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "#!AMR\n" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}

	// Media belongs to the corp: the mini-program cannot fetch it.
	mp := withToken(s.WeChatBase(), "/cgi-bin/media/get", mpToken(t, s)) + "&media_id=" + id
	resp, err = http.Get(mp)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "foreign media", decodeResp(t, resp), errInvalidMediaID)
}
