package gateway

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/tacklegate/tacklegate/media"
)

// Room answers carry ice_servers: the embedded TURN server's STUN and TURN
// URLs, TURN with a credential of the caller's own that expires with the
// room token and that the TURN server accepts.
func TestRoomAnswersCarryICEServers(t *testing.T) {
	e := newIdentityEnv(t)
	m, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	secret := []byte("turn-secret-for-tests")
	ts, err := media.StartTURN(media.TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	urls := append(ts.URLs(), "stun:stun.example.com:3478")
	rooms := &Rooms{Manager: m, TokenTTL: time.Hour, ICE: &media.ICEServers{URLs: urls, Secret: secret}}
	srv := New(Options{BodyLimit: 1 << 20, Identity: e.srv.opts.Identity, Rooms: rooms})
	base := startHTTP(t, srv)

	type answer struct {
		RoomID     string      `json:"room_id"`
		ICEServers []iceServer `json:"ice_servers"`
	}
	var created, joined answer
	if st := postAuth(t, base+"/api/v1/rooms", e.ownerLogin(t), map[string]any{}, &created); st != 200 {
		t.Fatalf("create room: %d", st)
	}
	if st := postAuth(t, base+"/api/v1/rooms/"+created.RoomID+"/join", e.customerLogin(t, "o-ice"), nil, &joined); st != 200 {
		t.Fatalf("join room: %d", st)
	}
	var users []string
	for _, a := range []answer{created, joined} {
		if len(a.ICEServers) != 2 {
			t.Fatalf("ice_servers = %+v, want a STUN and a TURN entry", a.ICEServers)
		}
		stun, relay := a.ICEServers[0], a.ICEServers[1]
		if len(stun.URLs) != 2 || stun.Username != "" || !strings.HasPrefix(stun.URLs[0], "stun:127.0.0.1:") {
			t.Errorf("STUN entry = %+v", stun)
		}
		if len(relay.URLs) != 2 || !strings.HasPrefix(relay.URLs[0], "turn:127.0.0.1:") || !strings.HasSuffix(relay.URLs[1], "?transport=tcp") || relay.Credential == "" {
			t.Fatalf("TURN entry = %+v", relay)
		}
		exp, user, _ := strings.Cut(relay.Username, ":")
		n, _ := strconv.ParseInt(exp, 10, 64)
		if left := time.Until(time.Unix(n, 0)); left < 59*time.Minute || left > time.Hour+time.Minute {
			t.Errorf("credential expires in %s, want the token's hour", left)
		}
		users = append(users, user)

		// The credential opens a relay on the embedded server.
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: ts.Addr().String(), STUNServerAddr: ts.Addr().String(),
			Username: relay.Username, Password: relay.Credential, Conn: conn})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relayConn, err := c.Allocate()
		if err != nil {
			t.Errorf("the answer's credential was refused: %v", err)
		} else {
			relayConn.Close()
		}
		c.Close()
		conn.Close()
	}
	if users[0] == users[1] || !strings.HasPrefix(users[0], "o-") || !strings.HasPrefix(users[1], "c-") {
		t.Errorf("credential users %v: want the owner's and the customer's own", users)
	}

	// Without ICE servers configured the list is empty, not null.
	plain := New(Options{BodyLimit: 1 << 20, Identity: e.srv.opts.Identity, Rooms: &Rooms{Manager: m}})
	var raw map[string]any
	if st := postAuth(t, startHTTP(t, plain)+"/api/v1/rooms", e.ownerLogin(t), map[string]any{}, &raw); st != 200 {
		t.Fatalf("create room: %d", st)
	}
	if l, ok := raw["ice_servers"].([]any); !ok || len(l) != 0 {
		t.Errorf("ice_servers without configuration = %#v, want []", raw["ice_servers"])
	}
}
