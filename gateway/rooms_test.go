package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/tacklegate/tacklegate/media"
)

func postAuth(t *testing.T, url, token string, in any, out any) int {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out) //nolint:errcheck
	}
	return resp.StatusCode
}

func readSignal(t *testing.T, c *websocket.Conn, want string) media.Signal {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	for {
		var sig media.Signal
		if err := c.ReadJSON(&sig); err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if sig.Type == want {
			return sig
		}
	}
}

// TestRoomSignalingOverWebSocket: a room token from /api/v1/rooms opens the
// room's signaling on /ws; a bad token is refused before the handshake; a
// second participant sees the first; a real WebRTC offer is answered by the
// SFU.
func TestRoomSignalingOverWebSocket(t *testing.T) {
	e := newIdentityEnv(t)
	m, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	srv := New(Options{BodyLimit: 1 << 20, Identity: e.srv.opts.Identity, Rooms: &Rooms{Manager: m}})
	base := startHTTP(t, srv)
	wsBase := "ws" + strings.TrimPrefix(base, "http")

	owner := e.ownerLogin(t)
	var room struct {
		RoomID string `json:"room_id"`
		Token  string `json:"token"`
		WS     string `json:"ws"`
	}
	if st := postAuth(t, base+"/api/v1/rooms", owner, map[string]any{}, &room); st != 200 || room.Token == "" || !strings.HasPrefix(room.RoomID, "r-") {
		t.Fatalf("create room: %d %+v", st, room)
	}
	if st := postAuth(t, base+"/api/v1/rooms", "", nil, nil); st != 401 {
		t.Errorf("anonymous room creation: %d", st)
	}

	// A forged token never reaches the WebSocket.
	_, resp, err := websocket.DefaultDialer.Dial(wsBase+"/ws?token=forged", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("forged token: err=%v resp=%v", err, resp)
	}
	// An access token is not a room token.
	if _, resp, err := websocket.DefaultDialer.Dial(wsBase+"/ws?token="+owner, nil); err == nil || resp.StatusCode != 401 {
		t.Errorf("an access token opened a room")
	}

	a, _, err := websocket.DefaultDialer.Dial(wsBase+room.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	joined := readSignal(t, a, "joined")
	if joined.Room != room.RoomID || joined.Self == nil {
		t.Fatalf("joined: %+v", joined)
	}

	// A customer joins the same room with a token of their own.
	customer := e.customerLogin(t, "o-video")
	var second struct {
		Token string `json:"token"`
		WS    string `json:"ws"`
	}
	if st := postAuth(t, base+"/api/v1/rooms/"+room.RoomID+"/join", customer, nil, &second); st != 200 {
		t.Fatalf("join: %d", st)
	}
	if st := postAuth(t, base+"/api/v1/rooms/r-nosuchroom/join", customer, nil, nil); st != 404 {
		t.Errorf("joining a room that does not exist: %d", st)
	}
	b, _, err := websocket.DefaultDialer.Dial(wsBase+second.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if j := readSignal(t, b, "joined"); len(j.Participants) != 1 {
		t.Errorf("the second participant does not see the first: %+v", j.Participants)
	}
	readSignal(t, a, "participant-joined")

	// A real offer from a WebRTC client is answered by the SFU.
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteJSON(media.Signal{Type: "offer", SDP: &offer}); err != nil {
		t.Fatal(err)
	}
	ans := readSignal(t, a, "answer")
	if ans.SDP == nil || ans.SDP.Type != webrtc.SDPTypeAnswer {
		t.Fatalf("answer: %+v", ans)
	}
	if err := pc.SetRemoteDescription(*ans.SDP); err != nil {
		t.Errorf("the SFU's answer does not apply: %v", err)
	}
	// Garbage on the socket gets an error signal, not a dropped call.
	a.WriteMessage(websocket.TextMessage, []byte("{{{")) //nolint:errcheck
	if e := readSignal(t, a, "error"); e.Error == nil || e.Error.Code != "invalid" {
		t.Errorf("garbage signal: %+v", e)
	}
}
