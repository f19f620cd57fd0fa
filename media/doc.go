// Package media hosts the WebRTC rooms used for video help: a pion SFU with
// signaling, TURN and recording. It knows nothing about rental; the gateway
// gives it rooms, participants and tokens.
//
// # Using it
//
// The gateway makes one Manager at start-up (NewManager) and Closes it at
// shutdown. For each /ws connection that carries a valid room token it calls
// Join with the room id and the participant from the token, and a send
// function that writes one signal as one WebSocket text message. Every
// message the client sends is decoded into a Signal and passed to
// Session.Handle; when the socket closes, Session.Close. A voice call is a
// room opened with OpenRoom(id, RoomOptions{AudioOnly: true}) before anyone
// joins; Join opens any other room itself. Hooks report arrivals, departures
// and closed rooms for call records; Stats and Rooms feed /metrics.
//
// Rooms are SFU rooms: every track a participant publishes, audio and video,
// is forwarded to every other participant and never back to its publisher.
// Each participant has one PeerConnection carrying both directions.
//
// # Wire protocol
//
// JSON objects, one per WebSocket message, with a "type". SDP and candidate
// bodies are exactly what a browser's RTCSessionDescription.toJSON() and
// RTCIceCandidate.toJSON() produce, so the page passes them through.
//
// Server to client:
//
//	{"type":"joined","room":"r1","self":{...},"participants":[{...}],"resumed":false,"audioOnly":false}
//	    First message on every session. participants are the others, each
//	    {"id","name","role","audioOnly","audioMuted","videoMuted","connected",
//	    "tracks":[{"id":"video-1","kind":"video","simulcast":true}]}.
//	    resumed: this session picked up a participant kept through the
//	    reconnect grace: keep the existing RTCPeerConnection, do not make a
//	    new one (restart ICE if its connection is not "connected").
//	{"type":"offer","sdp":{"type":"offer","sdp":"v=0..."}}
//	{"type":"answer","sdp":{"type":"answer","sdp":"v=0..."}}
//	{"type":"candidate","candidate":{"candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"..."}}
//	{"type":"participant-joined","participant":{...}}
//	{"type":"participant-left","participant":{...},"reason":"left|timeout|ice_failed|hangup|room_closed|shutdown"}
//	    When participant is yourself you were removed: join afresh.
//	{"type":"mute","participant":{...},"kind":"audio|video","muted":true}
//	{"type":"error","error":{"code":"video_not_allowed","message":"..."}}
//	{"type":"room-closed"}  the call was ended for everyone; the session ends.
//
// Client to server:
//
//	{"type":"offer","sdp":{...}}      the first offer, and later ones (ICE restart, a new track)
//	{"type":"answer","sdp":{...}}     to each server offer
//	{"type":"candidate","candidate":{...}}   trickle ICE; null/absent candidate is ignored
//	{"type":"restart-ice"}            ask the server to offer an ICE restart (for clients that cannot roll back)
//	{"type":"mute","kind":"video","muted":true}
//	{"type":"leave"}
//
// Absent booleans are false. Unknown fields are ignored; an unknown type is
// answered with an "invalid" error.
//
// # Negotiation
//
// The client makes the first offer after "joined", with the tracks it
// publishes (a receive-only client offers recvonly transceivers). The server
// answers, then offers whenever tracks come and go: another participant
// publishes, stops or leaves. Either side may offer later; the client does
// to restart ICE (Wi-Fi → 4G: restart when iceConnectionState becomes
// "disconnected") or to add a track. On glare the server is the impolite
// peer and ignores the client's offer; the client is polite: on an offer
// while its own is outstanding it rolls back (setLocalDescription({type:
// "rollback"})), answers ours, and offers again — the standard perfect
// negotiation pattern with polite = true. This way round because pion cannot
// roll back a local offer at all (it refuses have-local-offer → rollback;
// pion/webrtc#2133) and browsers can. A client that cannot roll back either
// (a pion bench client) asks with "restart-ice" instead of offering.
//
// The server's first offer waits until ICE has connected: a pion-based
// client that gets an offer right after the answer to its first one, before
// pion has started its ICE transport, mistakes it for an ICE restart and
// never connects (see negotiate). Browsers are unaffected either way.
//
// Candidates are trickled both ways. The server sends its candidates only
// after the description they belong to, and keeps a client's candidates
// that arrive ahead of their description (matched by ufrag) until it comes.
//
// A track's msid stream id is its publisher's participant id and its track
// id is the publisher's track id from "tracks": that is how the page puts a
// name to a video.
//
// # Reconnecting
//
// Session.Close (the socket went away) keeps the participant, its
// PeerConnection and tracks for Config.ReconnectGrace; media keeps flowing
// meanwhile. A Join with the same participant id within it resumes: a new
// "joined" with resumed true, then any server offer the client missed.
// ICE failing without a restart within the same grace removes the
// participant, as does the grace running out.
//
// # Media
//
// Codecs are Opus and VP8 (no RTX). Interceptors on every PeerConnection:
// NACK generator (toward publishers) and responder (toward subscribers, from
// the SFU's own buffer), RTCP sender and receiver reports, TWCC feedback to
// publishers, TWCC sequence numbers toward subscribers with a GCC
// send-side bandwidth estimate per subscriber. Keyframe requests (PLI, FIR)
// from subscribers are passed to the publisher, at most one per layer per
// 500 ms, and a new subscriber's request is made when its track is bound.
//
// Simulcast publishes (rid) are accepted. Each subscriber gets one layer:
// every 500 ms the layers' bitrates are measured and each subscriber's
// estimate, less what its audio and single-layer video take, is shared
// equally among its simulcast tracks; the highest layer that fits is chosen
// (going up needs 15% headroom). A switch waits for a keyframe on the new
// layer, requested at once; sequence numbers and timestamps are rewritten
// so the subscriber sees one continuous stream.
//
// Voice calls (audio-only rooms, or an audio-only participant) mark every
// video m-line inactive in the SDP they send and report video_not_allowed
// when a client offers to send video; the call goes on with audio.
//
// # TURN
//
// StartTURN runs an embedded TURN server (pion/turn v5) on one address,
// UDP and TCP, for clients with no direct UDP path to the SFU. Its
// credentials are the TURN REST scheme, minted per participant by
// ICEServers.For and checked statelessly, so they expire on their own;
// its relays reach only this machine. See turn.go.
//
// # Recording
//
// Manager.StartRecording records every track of a room, each to its own
// IVF (VP8) or Ogg (Opus) file, written in encrypted, hashed, chained
// segments with pause/resume; Stop signs a manifest; VerifyRecording and
// ExportTrack check and give back the files; RecoverRecording finishes one
// whose process died, from its journal. The caller supplies the key
// and stores the chain heads reported by OnSegment. See record.go.
//
// # Not here yet
//
// The H5 page is separate work (issue 8 item 6). No TURN over TLS on 443
// yet (TURN is on UDP and TCP), for networks that let only HTTPS out.
// Within this package: no bandwidth probing, so a subscriber moved down a
// layer climbs back only as GCC's estimate creeps up, and on a link it
// does not fill the estimate overshoots and swings back (measured in
// docs/PERFORMANCE.md); no VP8 picture-id/TL0PICIDX rewriting across
// simulcast switches (browsers accept the jump at a keyframe), no temporal
// layers or SVC, no pausing video a subscriber cannot afford even at the
// lowest layer, padding-only probe packets are forwarded rather than
// dropped, and H.264 is not offered. Recording writes packets in arrival
// order (no jitter buffer: a retransmission that arrives late is not put
// back in place) and records no H.264.
package media
