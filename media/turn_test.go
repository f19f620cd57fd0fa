package media

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

var turnSecret = []byte("s3cret-s3cret-s3cret")

func startTestTURN(t *testing.T, now func() time.Time) *TURNServer {
	t.Helper()
	srv, err := StartTURN(TURNConfig{
		Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: turnSecret,
		AllowLoopbackPeers: true, MaxAllocationsPerUser: 3, Logger: testLogger(), Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// The credential is the TURN REST scheme, checked against a vector made
// with openssl:
// printf 1700000000:alice | openssl dgst -sha1 -hmac s3cret-s3cret-s3cret -binary | base64
func TestTURNCredentials(t *testing.T) {
	user, pw := TURNCredentials(turnSecret, "alice", time.Unix(1700000000, 0))
	if user != "1700000000:alice" || pw != "+yneP1+XnZQtOtj/C4U1G0Aphhg=" {
		t.Fatalf("got %q / %q", user, pw)
	}
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"1700000001:alice", true},
		{"1700000000:alice", false}, // expires at that second
		{"1699999999:alice", false},
		{"alice", false},
		{"1700000001:", false},
		{"x:alice", false},
	} {
		if _, ok := checkTURNUsername(tc.name, now); ok != tc.ok {
			t.Errorf("checkTURNUsername(%q) = %v, want %v", tc.name, ok, tc.ok)
		}
	}
}

// allocate tries a TURN allocation with the given credentials and, if it
// succeeds, a permission for peer.
func allocate(t *testing.T, srv *TURNServer, user, pass string, peer net.IP) (relay net.PacketConn, permErr, err error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: srv.Addr().String(), STUNServerAddr: srv.Addr().String(),
		Username: user, Password: pass, Conn: conn, RTO: 200 * time.Millisecond,
		LoggerFactory: pionLogs{testLogger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err = c.Allocate()
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = relay.Close() })
	if peer != nil {
		permErr = c.CreatePermission(&net.UDPAddr{IP: peer, Port: 9})
	}
	return relay, permErr, nil
}

// Valid credentials allocate a relay on the public IP; expired, forged or
// foreign-secret ones are refused; a relay may only reach this machine;
// one user cannot hoard relays.
func TestTURNAuthAndPermissions(t *testing.T) {
	t.Parallel()
	srv := startTestTURN(t, nil)
	now := time.Now()

	user, pass := TURNCredentials(turnSecret, "c-alice", now.Add(time.Hour))
	relay, permErr, err := allocate(t, srv, user, pass, net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatalf("valid credential refused: %v", err)
	}
	if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("relay address %s, want the public IP 127.0.0.1", relay.LocalAddr())
	}
	if permErr != nil {
		t.Errorf("permission to this machine refused: %v", permErr)
	}
	if n := srv.Allocations(); n != 1 {
		t.Errorf("Allocations = %d, want 1", n)
	}

	// A relay into someone else's network: refused.
	if _, permErr, err := allocate(t, srv, user, pass, net.ParseIP("192.0.2.10")); err != nil || permErr == nil {
		t.Errorf("permission to 192.0.2.10: allocate err %v, permission err %v; want the permission refused", err, permErr)
	}

	expUser, expPass := TURNCredentials(turnSecret, "c-alice", now.Add(-time.Second))
	forgedUser := user[:strings.Index(user, ":")] + ":s-staff" // another user, same password
	_, otherPass := TURNCredentials([]byte("another-secret-entirely"), "c-alice", now.Add(time.Hour))
	for _, tc := range []struct{ name, user, pass string }{
		{"expired", expUser, expPass},
		{"forged user", forgedUser, pass},
		{"wrong secret", user, otherPass},
		{"no expiry", "c-alice", pass},
	} {
		if _, _, err := allocate(t, srv, tc.user, tc.pass, nil); err == nil {
			t.Errorf("%s: allocation succeeded, want refused", tc.name)
		}
	}

	// MaxAllocationsPerUser is 3: the one above, the refused-permission
	// one, and one more.
	if _, _, err := allocate(t, srv, user, pass, nil); err != nil {
		t.Fatalf("third allocation: %v", err)
	}
	if _, _, err := allocate(t, srv, user, pass, nil); err == nil {
		t.Error("fourth allocation for one user succeeded, want the quota to refuse it")
	}
}

// A client that may only use relay candidates (a network with no direct
// UDP path) completes a call through the embedded TURN server.
func TestRelayOnlyCallThroughTURN(t *testing.T) {
	t.Parallel()
	srv := startTestTURN(t, nil)
	ice := &ICEServers{URLs: srv.URLs(), Secret: turnSecret, TTL: time.Hour}
	servers := ice.For("alice")
	if len(servers) != 2 || servers[1].Username == "" || len(servers[1].URLs) != 2 {
		t.Fatalf("ICE servers = %+v, want STUN and TURN (UDP and TCP) with a credential", servers)
	}
	m := newTestManager(t, nil)
	a := newClient(t, m, "relay", "alice", clientOptions{audio: true, video: true, iceServers: servers, relayOnly: true})
	b := newClient(t, m, "relay", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, a, "video", 20, 10*time.Second, "bob")
	waitPackets(t, b, "video", 20, 10*time.Second, "alice")

	pair, err := selectedPair(a.pc)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("alice's selected local candidate is %s, want relay", pair.Local.Typ)
	}
	if srv.Allocations() == 0 {
		t.Error("no TURN allocation open during the call")
	}
}

func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	sctp := pc.SCTP()
	var tr *webrtc.ICETransport
	if sctp != nil {
		tr = sctp.Transport().ICETransport()
	} else {
		for _, s := range pc.GetSenders() {
			if s.Transport() != nil {
				tr = s.Transport().ICETransport()
				break
			}
		}
	}
	if tr == nil {
		return nil, errors.New("no ICE transport")
	}
	return tr.GetSelectedCandidatePair()
}

func TestValidICEURL(t *testing.T) {
	for _, u := range []string{"stun:stun.example.com", "stun:203.0.113.5:3478", "turn:turn.example.com:3478?transport=udp",
		"turns:turn.example.com:443?transport=tcp", "turn:[2001:db8::1]:3478"} {
		if err := ValidICEURL(u); err != nil {
			t.Errorf("ValidICEURL(%q) = %v, want ok", u, err)
		}
	}
	for _, u := range []string{"", "stun", "http://x", "turn:user:pw@host:3478", "stun:host:0", "stun:host:99999",
		"stun:host?transport=udp", "turn:host?transport=sctp", "turn:", "stun:/path"} {
		if err := ValidICEURL(u); err == nil {
			t.Errorf("ValidICEURL(%q) = nil, want an error", u)
		}
	}
}

// The username comes off the network in every TURN request: parsing it
// never panics, and a credential we issue always checks out until it
// expires.
func FuzzTURNUsername(f *testing.F) {
	for _, s := range []string{"1700000001:alice", "alice", ":", "1700000001:", "-1:x", "99999999999999999999:x", "1700000001:a:b"} {
		f.Add(s)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		user, ok := checkTURNUsername(s, now)
		if ok && (user == "" || !strings.HasSuffix(s, ":"+user)) {
			t.Fatalf("%q accepted with user %q", s, user)
		}
		if s == "" || strings.ContainsRune(s, 0) {
			return
		}
		name, _ := TURNCredentials(turnSecret, s, now.Add(time.Minute))
		if got, ok := checkTURNUsername(name, now); !ok || got != s {
			t.Fatalf("issued %q for %q, checked as %q %v", name, s, got, ok)
		}
	})
}

func FuzzValidICEURL(f *testing.F) {
	for _, s := range []string{"stun:h:1", "turn:h?transport=udp", "turns:[::1]:443?transport=tcp", "x", "turn::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = ValidICEURL(s) // must not panic
	})
}

// A client on a network that lets no UDP out reaches the embedded TURN
// server over TCP; its media is relayed over UDP on our side.
func TestRelayOverTCP(t *testing.T) {
	t.Parallel()
	srv := startTestTURN(t, nil)
	var tcpURL string
	for _, u := range srv.URLs() {
		if strings.HasSuffix(u, "?transport=tcp") {
			tcpURL = u
		}
	}
	ice := &ICEServers{URLs: []string{tcpURL}, Secret: turnSecret}
	m := newTestManager(t, nil)
	a := newClient(t, m, "tcp", "alice", clientOptions{audio: true, video: true, iceServers: ice.For("alice"), relayOnly: true})
	b := newClient(t, m, "tcp", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, a, "video", 20, 15*time.Second, "bob")
	waitPackets(t, b, "video", 20, 15*time.Second, "alice")
	pair, err := selectedPair(a.pc)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay || srv.tcpAllocs.Load() == 0 {
		t.Errorf("alice's local candidate is %s with %d allocations over TCP, want a relay over TCP", pair.Local.Typ, srv.tcpAllocs.Load())
	}
}
