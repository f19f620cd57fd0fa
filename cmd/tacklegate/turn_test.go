package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve with TACKLEGATE_TURN_ADDR runs the embedded TURN server for as long
// as it runs: room answers name it (and the extra ICE_SERVERS) with a
// credential, it answers STUN while serve runs, and it is gone after.
func TestServeRunsTURN(t *testing.T) {
	dir := t.TempDir()
	r := start(t, map[string]string{
		"TACKLEGATE_DATABASE_URL":   "sqlite://" + filepath.Join(dir, "tg.db"),
		"TACKLEGATE_DATA_KEY":       testDataKey,
		"TACKLEGATE_OWNER_PASSWORD": "turn-test-password",
		"TACKLEGATE_TURN_ADDR":      "127.0.0.1:0",
		"TACKLEGATE_TURN_SECRET":    "turn-secret-0123456789",
		"TACKLEGATE_ICE_SERVERS":    "stun:stun.example.com:3478",
	}, "serve")
	var login struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if code := postJSON(t, r.base+"/api/v1/auth/owner", map[string]string{"username": "owner", "password": "turn-test-password"}, &login); code != 200 {
		t.Fatalf("owner login: %d", code)
	}
	req, _ := http.NewRequest("POST", r.base+"/api/v1/rooms", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+login.Tokens.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var room struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"ice_servers"`
	}
	json.NewDecoder(resp.Body).Decode(&room) //nolint:errcheck
	resp.Body.Close()
	if len(room.ICEServers) != 2 {
		t.Fatalf("ice_servers = %+v, want STUN and TURN", room.ICEServers)
	}
	stun := room.ICEServers[0].URLs
	if len(stun) != 2 || !strings.HasPrefix(stun[0], "stun:127.0.0.1:") || stun[1] != "stun:stun.example.com:3478" {
		t.Errorf("STUN URLs = %v", stun)
	}
	relay := room.ICEServers[1]
	if len(relay.URLs) != 2 || !strings.HasPrefix(relay.URLs[0], "turn:127.0.0.1:") || relay.Username == "" || relay.Credential == "" {
		t.Fatalf("TURN entry = %+v", relay)
	}
	turnAddr := strings.TrimSuffix(strings.TrimPrefix(relay.URLs[0], "turn:"), "?transport=udp")
	if !stunAnswers(t, turnAddr) {
		t.Errorf("the TURN server at %s does not answer a STUN binding request while serve runs", turnAddr)
	}
	if code := r.stop(); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	if stunAnswers(t, turnAddr) {
		t.Errorf("the TURN server at %s still answers after serve stopped", turnAddr)
	}
}

// stunAnswers sends a STUN binding request (RFC 5389, no attributes) and
// reports whether a binding success response comes back.
func stunAnswers(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	buf := make([]byte, 1500)
	for range 3 {
		if _, err := conn.Write(req); err != nil {
			return false
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
		n, err := conn.Read(buf)
		if err == nil && n >= 20 && buf[0] == 0x01 && buf[1] == 0x01 && bytes.Equal(buf[8:20], req[8:20]) {
			return true
		}
	}
	return false
}
