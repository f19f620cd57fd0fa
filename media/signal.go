package media

import (
	"errors"
	"regexp"

	"github.com/pion/webrtc/v4"
)

// Signal is one signaling message in either direction: the JSON the gateway
// carries over /ws, one object per WebSocket text message. The protocol is
// described in the package documentation (doc.go); the field comments say
// which types use which fields.
type Signal struct {
	Type string `json:"type"`

	// offer, answer: exactly RTCSessionDescription.toJSON() in a browser,
	// {"type":"offer","sdp":"v=0..."}.
	SDP *webrtc.SessionDescription `json:"sdp,omitempty"`
	// candidate: exactly RTCIceCandidate.toJSON(). A null or absent
	// candidate is ignored (end of candidates needs no signal).
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`

	// joined: the room, who you are and who else is there.
	Room         string             `json:"room,omitempty"`
	Self         *ParticipantState  `json:"self,omitempty"`
	Participants []ParticipantState `json:"participants,omitempty"`
	// joined: true when this Join picked up a participant kept through
	// ReconnectGrace; the PeerConnection is the old one, keep using it.
	Resumed bool `json:"resumed,omitempty"`
	// joined: true in an audio-only room (a voice call).
	AudioOnly bool `json:"audioOnly,omitempty"`

	// participant-joined, participant-left, mute (server → client): whom
	// it is about, with their current state.
	Participant *ParticipantState `json:"participant,omitempty"`
	// participant-left: why.
	Reason LeaveReason `json:"reason,omitempty"`

	// mute: which kind ("audio" or "video") and its new state. Client →
	// server announces; server → client relays with Participant set.
	Kind  string `json:"kind,omitempty"`
	Muted bool   `json:"muted,omitempty"`

	// error: what went wrong. Code is stable; Message is safe to show.
	Error *SignalError `json:"error,omitempty"`
}

// SignalError is the body of an "error" signal.
type SignalError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Signal types.
const (
	TypeJoined            = "joined"
	TypeOffer             = "offer"
	TypeAnswer            = "answer"
	TypeCandidate         = "candidate"
	TypeMute              = "mute"
	TypeParticipantJoined = "participant-joined"
	TypeParticipantLeft   = "participant-left"
	TypeError             = "error"
	TypeLeave             = "leave"
	TypeRestartICE        = "restart-ice"
	TypeRoomClosed        = "room-closed"
)

// ParticipantInfo is who joins: the gateway fills it from the room token.
type ParticipantInfo struct {
	// ID is stable across reconnects: a second Join with the same ID
	// resumes the participant. 1–64 characters of A–Z a–z 0–9 . _ - because
	// it becomes the msid stream id in SDP.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"` // "customer", "staff": media does not interpret it
	// AudioOnly: this participant neither sends nor receives video (a
	// voice-only leg in a video room).
	AudioOnly bool `json:"audioOnly,omitempty"`
}

// ParticipantState is a participant as others see it.
type ParticipantState struct {
	ParticipantInfo
	AudioMuted bool `json:"audioMuted,omitempty"`
	VideoMuted bool `json:"videoMuted,omitempty"`
	// Connected is false while the participant is kept through
	// ReconnectGrace without a transport or with ICE failed.
	Connected bool `json:"connected"`
	// Tracks are the media the participant publishes. Their StreamID in
	// the subscriber's SDP (msid) is the participant ID.
	Tracks []TrackState `json:"tracks,omitempty"`
}

// TrackState is one published track.
type TrackState struct {
	ID        string `json:"id"`   // the track id in the subscriber's SDP (msid)
	Kind      string `json:"kind"` // "audio" or "video"
	Simulcast bool   `json:"simulcast,omitempty"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func validID(s string) bool { return idPattern.MatchString(s) }

func errorSignal(err error) Signal {
	code := ErrorCode(err)
	msg := "internal error"
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		msg = e.Message
	}
	return Signal{Type: TypeError, Error: &SignalError{Code: code, Message: msg}}
}
