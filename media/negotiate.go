package media

import (
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Negotiation. The client makes the first offer. After that both sides
// may offer: we offer when tracks come and go, the client when it restarts
// ICE or adds a track. On glare the client is the polite peer (it rolls
// back and answers ours) and we ignore its offer: pion cannot roll back a
// local offer (it refuses the have-local-offer → stable rollback, and mids
// CreateOffer assigned would stay; pion/webrtc#2133), browsers can. All of
// these run on the participant's op loop.

// handleOffer answers a client offer, or ignores it on glare.
func (p *participant) handleOffer(desc webrtc.SessionDescription) error {
	if p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		p.log.Debug("ignoring client offer that collided with ours")
		p.m.glare.Add(1)
		return nil
	}
	p.holdCandidates()
	defer p.releaseCandidates()
	restart := p.clientOffered && iceCredentialsChanged(p.pc.RemoteDescription(), desc)
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		return &Error{Op: "offer", Code: CodeInvalid, Message: "offer rejected", Err: err}
	}
	if restart {
		p.m.iceRestarts.Add(1)
		p.log.Info("ICE restart by client offer")
	}
	p.flushCandidates()
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return &Error{Op: "offer", Code: CodeInvalid, Message: "cannot answer offer", Err: err}
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return internal("offer", "cannot answer offer", err)
	}
	p.emit(Signal{Type: TypeAnswer, SDP: p.outgoing(answer)})
	if !p.video && offersVideo(desc) {
		p.emit(errorSignal(errorf("offer", CodeVideoNotAllowed, "this is a voice call: video is not sent")))
	}
	if !p.clientOffered {
		p.clientOffered = true
		subs := p.pendingSubs
		p.pendingSubs = nil
		for _, d := range subs {
			p.addSub(d)
		}
	}
	return nil
}

// handleAnswer applies the client's answer to our offer. If more changed
// meanwhile, the op loop offers again next.
func (p *participant) handleAnswer(desc webrtc.SessionDescription) error {
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return errorf("answer", CodeInvalid, "no offer is waiting for an answer")
	}
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		return &Error{Op: "answer", Code: CodeInvalid, Message: "answer rejected", Err: err}
	}
	p.flushCandidates()
	return nil
}

// pendingLimit bounds candidates kept for a description not yet applied.
const pendingLimit = 64

// handleCandidate adds a client candidate, or keeps it for its
// description.
func (p *participant) handleCandidate(c webrtc.ICECandidateInit) {
	rd := p.pc.RemoteDescription()
	if uf := candidateUfrag(c); rd == nil || (uf != "" && uf != iceUfrag(rd.SDP)) {
		// Trickled ahead of the description it belongs to (a client
		// sends candidates as it gathers, and an ICE restart gathers
		// before its offer is on the wire). Kept until that arrives.
		if len(p.pendingCands) < pendingLimit {
			p.pendingCands = append(p.pendingCands, c)
		}
		return
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		p.log.Debug("candidate ignored", "err", err)
	}
}

// flushCandidates applies the kept candidates that belong to the remote
// description just set, and drops the rest: they belong to an ICE
// generation that is over.
func (p *participant) flushCandidates() {
	cands := p.pendingCands
	p.pendingCands = nil
	rd := p.pc.RemoteDescription()
	if rd == nil {
		return
	}
	cur := iceUfrag(rd.SDP)
	for _, c := range cands {
		if uf := candidateUfrag(c); uf != "" && uf != cur {
			continue
		}
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("candidate ignored", "err", err)
		}
	}
}

// candidateUfrag is the ICE username fragment a candidate belongs to:
// usernameFragment when the client set it, else the "ufrag" extension
// Chrome and pion put in the candidate line.
func candidateUfrag(c webrtc.ICECandidateInit) string {
	if c.UsernameFragment != nil && *c.UsernameFragment != "" {
		return *c.UsernameFragment
	}
	f := strings.Fields(c.Candidate)
	for i := 8; i+1 < len(f); i++ {
		if f[i] == "ufrag" {
			return f[i+1]
		}
	}
	return ""
}

// negotiate offers the client what changed, now if the signaling state
// allows, or as soon as it does. Ops do not call it: they set needOffer,
// and the op loop calls it when no more ops are queued, so a burst of
// changes (someone joins with two tracks) makes one offer, not two.
//
// The first offer of ours also waits for ICE to connect. A pion client
// (our bench and test clients, native apps built on pion) that applies an
// offer right after the answer to its own first offer, before pion has
// started its ICE transport for that answer, compares the offer's ICE
// credentials with the empty ones its agent still has, takes that for an
// ICE restart, and answers with new credentials of its own, which our
// side then never adopts: the call never connects (about one join in ten
// when others were already publishing). Our ICE being connected proves the
// client's agent knows our credentials, so an offer after it is safe; it
// costs nothing in practice, since the subscriptions it carries cannot
// receive media before DTLS is up anyway. An ICE restart the client asked
// for does not wait: its new credentials are meant to replace the old.
func (p *participant) negotiate() {
	held := !p.iceUp && !p.iceRestart
	if !p.clientOffered || held || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.needOffer = true
		return
	}
	p.needOffer = false
	restart := p.iceRestart
	p.iceRestart = false
	p.holdCandidates()
	defer p.releaseCandidates()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		if !p.isClosed() {
			p.log.Warn("cannot make an offer", "err", err)
		}
		return
	}
	if restart {
		p.m.iceRestarts.Add(1)
		p.log.Info("ICE restart by server offer")
	}
	p.emit(Signal{Type: TypeOffer, SDP: p.outgoing(offer)})
}

// outgoing is the description as the client gets it. For a participant
// without video every video m-line says inactive, so the client sends
// none: pion can neither reject an m-line without breaking later offers
// nor set a transceiver's direction from outside.
func (p *participant) outgoing(d webrtc.SessionDescription) *webrtc.SessionDescription {
	if !p.video {
		d = inactivateVideo(d)
	}
	return &d
}

// resendOffer repeats our outstanding offer to a client that reconnected:
// it may have been lost with the old transport. Repeating it is harmless if
// it was not.
func (p *participant) resendOffer() {
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return
	}
	if d := p.pc.PendingLocalDescription(); d != nil {
		p.emit(Signal{Type: TypeOffer, SDP: p.outgoing(*d)})
	}
}

func iceCredentialsChanged(old *webrtc.SessionDescription, next webrtc.SessionDescription) bool {
	if old == nil {
		return false
	}
	a, b := iceUfrag(old.SDP), iceUfrag(next.SDP)
	return a != "" && b != "" && a != b
}

func iceUfrag(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// offersVideo reports whether the offer asks to send video.
func offersVideo(desc webrtc.SessionDescription) bool {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return false
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if dir == "sendrecv" || dir == "sendonly" {
			return true
		}
	}
	return false
}

// inactivateVideo rewrites every video m-line's direction to inactive.
func inactivateVideo(d webrtc.SessionDescription) webrtc.SessionDescription {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(d.SDP); err != nil {
		return d
	}
	changed := false
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		attrs := m.Attributes[:0]
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				continue
			}
			attrs = append(attrs, a)
		}
		m.Attributes = append(attrs, sdp.Attribute{Key: "inactive"})
		changed = true
	}
	if !changed {
		return d
	}
	out, err := parsed.Marshal()
	if err != nil {
		return d
	}
	return webrtc.SessionDescription{Type: d.Type, SDP: string(out)}
}
