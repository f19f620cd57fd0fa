package media

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"
)

// participant is one person in a room: one PeerConnection that carries
// what they publish and everything they receive. It outlives any one
// Session: a participant whose WebSocket drops is kept for ReconnectGrace.
//
// Everything that touches the PeerConnection's signaling state (remote and
// local descriptions, AddTrack, RemoveTrack, candidates) runs on the
// participant's op loop, one function at a time, so negotiation needs no
// locks and cannot interleave. mu guards the rest.
type participant struct {
	m      *Manager
	room   *Room
	info   ParticipantInfo
	log    *slog.Logger
	joined time.Time
	video  bool // may send and receive video

	pc       *webrtc.PeerConnection
	bwe      atomic.Value // cc.BandwidthEstimator, set while the pc is built
	counters rtcpCounters

	ops  chan func()
	done chan struct{} // closed by close; the op loop and waiters stop

	mu          sync.Mutex
	closed      bool
	session     *Session
	outbox      []Signal // candidates emitted while no session is attached
	holding     bool     // a description is being made: candidates wait for it
	held        []Signal
	pcState     webrtc.PeerConnectionState
	audioMuted  bool
	videoMuted  bool
	graceTimer  *time.Timer
	graceGen    uint64
	graceReason LeaveReason
	published   []*publishedTrack
	subs        map[*publishedTrack]*downTrack
	nextTrack   int

	// Op-loop state: touched only by functions running on the op loop.
	clientOffered bool // the client's first offer has been answered
	iceUp         bool // ICE has connected once: both sides' transports have started
	needOffer     bool // something changed that the client has not been offered yet
	iceRestart    bool // the next offer restarts ICE
	pendingCands  []webrtc.ICECandidateInit
	pendingSubs   []*downTrack
}

// outboxLimit bounds what we keep for a detached client. Only candidates
// are kept (a pending offer is re-sent from the PeerConnection on resume),
// and a client gathers a handful.
const outboxLimit = 64

func newParticipant(r *Room, info ParticipantInfo) *participant {
	return &participant{
		m:      r.m,
		room:   r,
		info:   info,
		log:    r.log.With("participant", info.ID),
		joined: r.m.cfg.Now(),
		video:  !r.opts.AudioOnly && !info.AudioOnly,
		ops:    make(chan func(), 64),
		done:   make(chan struct{}),
		subs:   map[*publishedTrack]*downTrack{},
	}
}

// start builds the PeerConnection and the op loop.
func (p *participant) start() error {
	api, err := newAPI(&p.m.cfg, apiOptions{
		log:         p.log,
		onEstimator: func(e cc.BandwidthEstimator) { p.bwe.Store(e) },
		counters:    &p.counters,
	})
	if err != nil {
		return internal("join", "cannot set up media", err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:    p.m.cfg.ICEServers,
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return internal("join", "cannot set up media", err)
	}
	p.pc = pc
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		if uf := candidateUfrag(init); uf != "" {
			init.UsernameFragment = &uf
		}
		p.emitCandidate(Signal{Type: TypeCandidate, Candidate: &init})
	})
	pc.OnConnectionStateChange(p.onConnectionState)
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateConnected || st == webrtc.ICEConnectionStateCompleted {
			// Not inline: pion is calling us. The op loop offers
			// whatever waited for this (see negotiate).
			p.m.spawn(func() { p.post(func() { p.iceUp = true }) })
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		if !p.m.enter() {
			return
		}
		defer p.m.leave()
		p.room.publish(p, remote, recv)
	})
	if !p.m.spawn(p.loop) {
		_ = pc.Close()
		return ErrClosed
	}
	return nil
}

func (p *participant) loop() {
	for {
		select {
		case f := <-p.ops:
			f()
			if p.needOffer && len(p.ops) == 0 {
				p.negotiate()
			}
		case <-p.done:
			return
		}
	}
}

// do runs f on the op loop and waits for its result.
func (p *participant) do(ctx context.Context, f func() error) error {
	res := make(chan error, 1)
	select {
	case p.ops <- func() { res <- f() }:
	case <-p.done:
		return ErrSessionClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		return err
	case <-p.done:
		return ErrSessionClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post queues f on the op loop without waiting for it.
func (p *participant) post(f func()) {
	select {
	case p.ops <- f:
	case <-p.done:
	}
}

// emit sends a signal to the client, or keeps a candidate for when it
// comes back.
func (p *participant) emit(sig Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emitLocked(sig)
}

// emitCandidate sends a local candidate, unless a description is being
// made: pion starts gathering inside SetRemoteDescription (ICE restart) and
// SetLocalDescription, before we have sent the description the candidate
// belongs to, and a browser rejects a candidate whose ufrag it has not seen
// in a description yet.
func (p *participant) emitCandidate(sig Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.held = append(p.held, sig)
		return
	}
	p.emitLocked(sig)
}

func (p *participant) holdCandidates() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

func (p *participant) releaseCandidates() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = false
	for _, sig := range p.held {
		p.emitLocked(sig)
	}
	p.held = nil
}

func (p *participant) emitLocked(sig Signal) {
	if p.closed {
		return
	}
	if p.session != nil {
		p.session.enqueue(sig)
		return
	}
	if sig.Type == TypeCandidate && len(p.outbox) < outboxLimit {
		p.outbox = append(p.outbox, sig)
	}
}

func (p *participant) state() ParticipantState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stateLocked()
}

func (p *participant) stateLocked() ParticipantState {
	st := ParticipantState{
		ParticipantInfo: p.info,
		AudioMuted:      p.audioMuted,
		VideoMuted:      p.videoMuted,
		Connected:       p.session != nil && p.pcState != webrtc.PeerConnectionStateFailed,
	}
	for _, t := range p.published {
		st.Tracks = append(st.Tracks, t.state())
	}
	return st
}

// attach binds a new transport to the participant and greets it. The
// joined signal is queued under mu so that nothing emitted concurrently
// can reach the client before it.
func (p *participant) attach(send func(Signal) error, resumed bool, others []ParticipantState) (*Session, *Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, errRetry
	}
	s := newSession(p, send)
	if !p.m.spawn(s.run) {
		return nil, nil, ErrClosed
	}
	old := p.session
	p.session = s
	s.enqueue(Signal{
		Type: TypeJoined, Room: p.room.id, Self: ptr(p.stateLocked()), Participants: others,
		Resumed: resumed, AudioOnly: p.room.opts.AudioOnly,
	})
	for _, sig := range p.outbox {
		s.enqueue(sig)
	}
	p.outbox = nil
	p.checkHealthLocked()
	return s, old, nil
}

// detach is called when session s's transport is gone. The participant
// stays, without a transport, for ReconnectGrace.
func (p *participant) detach(s *Session) {
	p.mu.Lock()
	if p.session != s {
		p.mu.Unlock()
		return
	}
	p.session = nil
	p.checkHealthLocked()
	p.mu.Unlock()
	p.log.Info("transport gone; keeping participant", "grace", p.m.cfg.ReconnectGrace)
}

func (p *participant) onConnectionState(st webrtc.PeerConnectionState) {
	p.log.Debug("connection state", "state", st.String())
	p.mu.Lock()
	p.pcState = st
	p.checkHealthLocked()
	hungUp := st == webrtc.PeerConnectionStateClosed && !p.closed
	p.mu.Unlock()
	if hungUp {
		// The client closed its PeerConnection (DTLS close_notify): a
		// hang-up without "leave". A closed connection cannot be
		// restarted, so there is nothing to wait for. Not inline: pion
		// is calling us, and close waits for pion's goroutines.
		p.m.spawn(func() { p.close(ReasonHangup, p.selfLeft(ReasonHangup)) })
	}
}

// selfLeft is the last signal a removed participant's client gets, so it
// knows to join afresh rather than wait.
func (p *participant) selfLeft(reason LeaveReason) *Signal {
	st := p.state()
	st.Connected = false
	return &Signal{Type: TypeParticipantLeft, Participant: &st, Reason: reason}
}

// checkHealthLocked starts the grace timer when the participant has no
// transport or its ICE has failed, and stops it when both are fine again.
// One timer covers both: either way the person has ReconnectGrace to come
// back (reconnect the socket, restart ICE) before they are removed.
func (p *participant) checkHealthLocked() {
	var reason LeaveReason
	switch {
	case p.closed:
		return
	case p.session == nil:
		reason = ReasonTimeout
	case p.pcState == webrtc.PeerConnectionStateFailed:
		reason = ReasonFailed
	}
	if reason == "" {
		if p.graceTimer != nil {
			p.graceTimer.Stop()
			p.graceTimer = nil
			p.graceGen++
		}
		return
	}
	p.graceReason = reason
	if p.graceTimer != nil {
		return
	}
	p.graceGen++
	gen := p.graceGen
	p.graceTimer = time.AfterFunc(p.m.cfg.ReconnectGrace, func() {
		p.mu.Lock()
		expired := p.graceGen == gen && p.graceTimer != nil
		reason := p.graceReason
		p.mu.Unlock()
		if expired {
			p.close(reason, p.selfLeft(reason))
		}
	})
}

// subscribe makes p receive t.
func (p *participant) subscribe(t *publishedTrack) {
	if t.pub == p || (t.kind == webrtc.RTPCodecTypeVideo && !p.video) {
		return
	}
	p.mu.Lock()
	if p.closed || p.subs[t] != nil {
		p.mu.Unlock()
		return
	}
	d := newDownTrack(t, p)
	p.subs[t] = d
	p.mu.Unlock()
	layers := t.layerList()
	if len(layers) > 0 {
		d.start(layers[0])
	}
	if !t.addDown(d) {
		p.mu.Lock()
		delete(p.subs, t)
		p.mu.Unlock()
		return
	}
	p.post(func() {
		if !p.clientOffered {
			p.pendingSubs = append(p.pendingSubs, d)
			return
		}
		p.addSub(d)
	})
}

// addSub adds d's transceiver. Op loop only.
func (p *participant) addSub(d *downTrack) {
	if p.isClosed() {
		return
	}
	p.mu.Lock()
	live := p.subs[d.track] == d
	p.mu.Unlock()
	if !live {
		return // unsubscribed before the client's first offer
	}
	sender, err := p.pc.AddTrack(d)
	if err != nil {
		p.log.Warn("cannot add track", "track", d.track.id, "err", err)
		return
	}
	d.sender = sender
	p.needOffer = true
	p.m.spawn(d.readRTCP)
}

// unsubscribe stops p receiving t.
func (p *participant) unsubscribe(t *publishedTrack) {
	p.mu.Lock()
	d := p.subs[t]
	delete(p.subs, t)
	p.mu.Unlock()
	if d == nil {
		return
	}
	t.removeDown(d)
	p.m.retire(d)
	p.post(func() {
		if d.sender == nil {
			return // never added: dropped from pendingSubs by addSub
		}
		if err := p.pc.RemoveTrack(d.sender); err != nil {
			p.log.Debug("remove track", "err", err)
			return
		}
		p.needOffer = true
	})
}

func (p *participant) setMute(kind string, muted bool) error {
	p.mu.Lock()
	switch kind {
	case "audio":
		p.audioMuted = muted
	case "video":
		p.videoMuted = muted
	default:
		p.mu.Unlock()
		return errorf("mute", CodeInvalid, "mute kind must be audio or video, not %q", kind)
	}
	st := p.stateLocked()
	p.mu.Unlock()
	p.room.broadcast(p, Signal{Type: TypeMute, Participant: &st, Kind: kind, Muted: muted})
	return nil
}

func (p *participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close removes the participant from its room and releases everything it
// holds. final, if set, is the last signal its client gets.
func (p *participant) close(reason LeaveReason, final *Signal) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if final != nil && p.session != nil {
		p.session.enqueue(*final)
	}
	p.closed = true
	if p.graceTimer != nil {
		p.graceTimer.Stop()
		p.graceTimer = nil
	}
	s := p.session
	p.session = nil
	subs := p.subs
	p.subs = map[*publishedTrack]*downTrack{}
	p.mu.Unlock()

	close(p.done)
	if s != nil {
		s.end(final != nil)
	}
	for t, d := range subs {
		t.removeDown(d)
		p.m.retire(d)
	}
	// Others hear of the departure first; the PeerConnection's close can
	// take a moment. Closing it ends our forwarding loops (their reads
	// fail), which unpublish our tracks from everyone else.
	p.room.leave(p, reason)
	if p.pc != nil {
		if err := p.pc.GracefulClose(); err != nil {
			p.log.Debug("close peer connection", "err", err)
		}
	}
	m := p.m
	m.retiredNACKsSent.Add(p.counters.nackSent.Swap(0))
	m.retiredNACKsRecv.Add(p.counters.nackReceived.Swap(0))
	m.retiredPLIsSent.Add(p.counters.pliSent.Swap(0))
	m.retiredPLIsRecv.Add(p.counters.pliReceived.Swap(0))
}

func (p *participant) estimate() int {
	if e, ok := p.bwe.Load().(cc.BandwidthEstimator); ok {
		if b := e.GetTargetBitrate(); b > 0 {
			return b
		}
	}
	return p.m.cfg.InitialBitrate
}

// allocate picks a simulcast layer for every simulcast track p receives.
// Called by the manager's allocator every tick, after layers are measured.
func (p *participant) allocate() {
	p.mu.Lock()
	downs := make([]*downTrack, 0, len(p.subs))
	for _, d := range p.subs {
		downs = append(downs, d)
	}
	p.mu.Unlock()

	budget := p.m.estimateFor(p)
	fixed, n := 0, 0
	for _, d := range downs {
		if d.track.simulcast {
			n++
			continue
		}
		for _, l := range d.track.layerList() {
			fixed += int(l.bitrate.Load())
		}
	}
	share := splitBudget(budget, fixed, n)
	for _, d := range downs {
		if !d.track.simulcast {
			continue
		}
		layers := d.track.layerList()
		if len(layers) == 0 {
			continue
		}
		rates := make([]layerRate, len(layers))
		for i, l := range layers {
			rates[i] = layerRate{bitrate: int(l.bitrate.Load()), active: l.active.Load()}
		}
		order := byBitrate(rates)
		sorted := make([]layerRate, len(order))
		_, tgt := d.layers()
		curIdx := -1
		for i, j := range order {
			sorted[i] = rates[j]
			if layers[j] == tgt {
				// Compare against where we are heading, so a pending
				// switch is not undone every tick.
				curIdx = i
			}
		}
		pick := selectLayer(sorted, share, curIdx)
		if pick < 0 {
			continue
		}
		d.setTarget(layers[order[pick]])
	}
}

func ptr[T any](v T) *T { return &v }

var errRetry = fmt.Errorf("media: participant closing, retry")

type participantCounts struct {
	subscriptions  int
	packets, bytes uint64
}

func (p *participant) counts() participantCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := participantCounts{subscriptions: len(p.subs)}
	for _, d := range p.subs {
		c.packets += d.packets.Load()
		c.bytes += d.bytes.Load()
	}
	return c
}
