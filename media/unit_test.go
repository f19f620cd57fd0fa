package media

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestIsVP8Keyframe(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"plain descriptor, key", []byte{0x10, 0x00, 0x00, 0x00}, true},
		{"plain descriptor, inter", []byte{0x10, 0x01}, false},
		{"not a partition start", []byte{0x00, 0x00}, false},
		{"second partition", []byte{0x11, 0x00}, false},
		{"7-bit picture id, key", []byte{0x90, 0x80, 0x05, 0x00}, true},
		{"15-bit picture id, key", []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"15-bit picture id, inter", []byte{0x90, 0x80, 0x81, 0x02, 0x01}, false},
		{"picture id, tl0picidx, tid, key", []byte{0x90, 0xe0, 0x81, 0x02, 0x07, 0x40, 0x00}, true},
		{"truncated", []byte{0x90, 0x80}, false},
		{"empty", nil, false},
	} {
		if got := isVP8Keyframe(tc.p); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCandidateUfrag(t *testing.T) {
	uf := "fromfield"
	for _, tc := range []struct {
		c    webrtc.ICECandidateInit
		want string
	}{
		{webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host ufrag abcd generation 0"}, "abcd"},
		{webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", UsernameFragment: &uf}, "fromfield"},
		{webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"}, ""},
	} {
		if got := candidateUfrag(tc.c); got != tc.want {
			t.Errorf("candidateUfrag(%q) = %q, want %q", tc.c.Candidate, got, tc.want)
		}
	}
}

const offerAV = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:u1\r\na=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:u1\r\na=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"

func TestInactivateVideo(t *testing.T) {
	d := inactivateVideo(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerAV})
	audio, video, _ := strings.Cut(d.SDP, "m=video")
	if !strings.Contains(video, "a=inactive") || strings.Contains(video, "a=sendonly") {
		t.Errorf("video section not inactive:\n%s", video)
	}
	if !strings.Contains(audio, "a=sendrecv") {
		t.Errorf("audio section changed:\n%s", audio)
	}
	if !offersVideo(webrtc.SessionDescription{SDP: offerAV}) || offersVideo(d) {
		t.Error("offersVideo does not tell a sending video m-line from an inactive one")
	}
	if u := iceUfrag(offerAV); u != "u1" {
		t.Errorf("iceUfrag = %q", u)
	}
}

// The wire format is what the browser page speaks: pin it.
func TestSignalJSON(t *testing.T) {
	in := `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab"}}`
	var s Signal
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != TypeCandidate || s.Candidate == nil || *s.Candidate.SDPMid != "0" || *s.Candidate.UsernameFragment != "ab" {
		t.Errorf("parsed %+v", s)
	}
	in = `{"type":"offer","sdp":{"type":"offer","sdp":"v=0\r\n"}}`
	if err := json.Unmarshal([]byte(in), &s); err != nil || s.SDP.Type != webrtc.SDPTypeOffer {
		t.Errorf("offer: %v %+v", err, s)
	}
	out, _ := json.Marshal(Signal{Type: TypeMute, Kind: "video", Muted: true,
		Participant: &ParticipantState{ParticipantInfo: ParticipantInfo{ID: "c1"}, VideoMuted: true, Connected: true}})
	want := `{"type":"mute","participant":{"id":"c1","videoMuted":true,"connected":true},"kind":"video","muted":true}`
	if string(out) != want {
		t.Errorf("mute JSON\n got %s\nwant %s", out, want)
	}
	out, _ = json.Marshal(errorSignal(errorf("join", CodeRoomFull, "room is full (2 participants)")))
	want = `{"type":"error","error":{"code":"room_full","message":"room is full (2 participants)"}}`
	if string(out) != want {
		t.Errorf("error JSON\n got %s\nwant %s", out, want)
	}
}

// fakeWriter records what a downTrack writes.
type fakeWriter struct{ pkts []rtp.Packet }

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	c := h.Clone()
	w.pkts = append(w.pkts, rtp.Packet{Header: c, Payload: append([]byte(nil), payload...)})
	return len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

// A downTrack rewrites SSRC and payload type to the subscriber's, strips
// the publisher's header extensions, and across a simulcast switch keeps
// sequence numbers consecutive and timestamps increasing; it switches only
// on a keyframe of the target layer.
func TestDownTrackRewritesAndSwitches(t *testing.T) {
	tr := &publishedTrack{kind: webrtc.RTPCodecTypeVideo, codec: codecVP8.RTPCodecCapability, simulcast: true}
	lo, hi := &layer{track: tr, rid: "q"}, &layer{track: tr, rid: "f"}
	lo.lastPLI.Store(time.Now().UnixNano()) // no publisher to ask for keyframes
	hi.lastPLI.Store(time.Now().UnixNano())
	w := &fakeWriter{}
	d := &downTrack{track: tr, writer: w, ssrc: 777, pt: 100}
	d.start(lo)

	key, inter := []byte{0x10, 0x00}, []byte{0x10, 0x01}
	pkt := func(l *layer, seq uint16, ts uint32, payload []byte) {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1}, Payload: payload}
		if err := p.SetExtension(3, []byte(l.rid)); err != nil {
			t.Fatal(err)
		}
		d.write(l, p, isVP8Keyframe(payload), time.Now().UnixNano())
	}
	pkt(lo, 100, 9000, inter) // before the first keyframe: dropped
	pkt(lo, 101, 9000, key)
	pkt(lo, 102, 12000, inter)
	pkt(hi, 5000, 700000, key) // not the target: dropped
	d.setTarget(hi)
	pkt(hi, 5001, 703000, inter) // target but not a keyframe: dropped
	pkt(lo, 103, 15000, inter)   // still on lo
	time.Sleep(5 * time.Millisecond)
	pkt(hi, 5002, 706000, key) // switch
	pkt(hi, 5003, 709000, inter)
	pkt(lo, 104, 18000, inter) // old layer: dropped

	if len(w.pkts) != 5 {
		t.Fatalf("wrote %d packets, want 5", len(w.pkts))
	}
	for i, p := range w.pkts {
		if p.SSRC != 777 || p.PayloadType != 100 || p.Extension || len(p.Extensions) != 0 {
			t.Errorf("packet %d header %+v: want ssrc 777, pt 100, no extensions", i, p.Header)
		}
		if i > 0 {
			if p.SequenceNumber != w.pkts[i-1].SequenceNumber+1 {
				t.Errorf("packet %d seq %d after %d", i, p.SequenceNumber, w.pkts[i-1].SequenceNumber)
			}
			if int32(p.Timestamp-w.pkts[i-1].Timestamp) < 0 {
				t.Errorf("packet %d timestamp went back", i)
			}
		}
	}
	if got := w.pkts[3].Timestamp - w.pkts[2].Timestamp; got < 90 || got > 90*1000 {
		t.Errorf("timestamp step across the switch %d ticks, want about the 5 ms that passed", got)
	}
	if w.pkts[4].Timestamp-w.pkts[3].Timestamp != 3000 {
		t.Errorf("timestamps within the new layer not preserved")
	}
}
