package gateway

import "github.com/pion/webrtc/v4"

// iceServer is one entry of a room answer's ice_servers, in the shape of a
// browser's RTCIceServer, so the page passes the list to
// new RTCPeerConnection({iceServers}) unchanged.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceServers are the STUN/TURN servers for participant pid, TURN ones
// with a credential minted now that expires with the room token. Always a
// list (empty when none are configured), never null.
func (h *roomHandlers) iceServers(pid string) []iceServer {
	out := []iceServer{}
	if h.rooms.ICE == nil {
		return out
	}
	ice := *h.rooms.ICE
	ice.TTL = h.rooms.TokenTTL
	for _, s := range ice.For(pid) {
		out = append(out, fromPion(s))
	}
	return out
}

func fromPion(s webrtc.ICEServer) iceServer {
	cred, _ := s.Credential.(string)
	return iceServer{URLs: s.URLs, Username: s.Username, Credential: cred}
}
