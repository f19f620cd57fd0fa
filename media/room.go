package media

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// RoomOptions are fixed when a room opens.
type RoomOptions struct {
	// AudioOnly makes a voice call: video offered is refused (its m-line
	// answered with port 0 and an error signal sent), none is forwarded.
	AudioOnly bool
	// MaxParticipants, if set, lowers Config.MaxParticipants for this
	// room (2 for a one-to-one help call).
	MaxParticipants int
}

// Room is an SFU room: everyone's tracks forwarded to everyone else.
type Room struct {
	m      *Manager
	id     string
	opts   RoomOptions
	log    *slog.Logger
	opened time.Time

	mu           sync.Mutex
	participants map[string]*participant
	tracks       []*publishedTrack
	peak         int
	lastLeft     time.Time
	closed       bool
	emptyTimer   *time.Timer
	emptyGen     uint64
	rec          *Recording // the recording in progress, if any (record.go)
}

func newRoom(m *Manager, id string, opts RoomOptions) *Room {
	return &Room{
		m: m, id: id, opts: opts,
		log:          m.log.With("room", id),
		opened:       m.cfg.Now(),
		participants: map[string]*participant{},
	}
}

// ID is the room's id.
func (r *Room) ID() string { return r.id }

func (r *Room) limit() int {
	if r.opts.MaxParticipants > 0 && r.opts.MaxParticipants < r.m.cfg.MaxParticipants {
		return r.opts.MaxParticipants
	}
	return r.m.cfg.MaxParticipants
}

// join adds a participant, or resumes the one with the same id.
func (r *Room) join(info ParticipantInfo, send func(Signal) error) (*Session, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errRetry
	}
	if p := r.participants[info.ID]; p != nil {
		others := r.othersLocked(p)
		r.mu.Unlock()
		s, old, err := p.attach(send, true, others)
		if err != nil {
			return nil, err
		}
		if old != nil {
			old.end(false) // a newer connection wins; the old one is stale
		}
		p.log.Info("participant resumed")
		p.post(p.resendOffer)
		return s, nil
	}
	if n := r.limit(); len(r.participants) >= n {
		r.mu.Unlock()
		return nil, errorf("join", CodeRoomFull, "room is full (%d participants)", n)
	}
	p := newParticipant(r, info)
	r.participants[info.ID] = p
	r.peak = max(r.peak, len(r.participants))
	if r.emptyTimer != nil {
		r.emptyTimer.Stop()
		r.emptyTimer = nil
	}
	r.emptyGen++
	others := r.othersLocked(p)
	r.mu.Unlock()

	if err := p.start(); err != nil {
		r.mu.Lock()
		delete(r.participants, info.ID)
		r.mu.Unlock()
		r.maybeEmpty()
		return nil, err
	}
	s, _, err := p.attach(send, false, others)
	if err != nil {
		p.close(ReasonShutdown, nil)
		return nil, err
	}
	p.log.Info("participant joined", "role", info.Role, "audio_only", !p.video)
	st := p.state()
	r.broadcast(p, Signal{Type: TypeParticipantJoined, Participant: &st})
	if h := r.m.cfg.Hooks.OnParticipantJoined; h != nil {
		h(ParticipantEvent{Room: r.id, Participant: info, At: p.joined})
	}
	r.mu.Lock()
	tracks := append([]*publishedTrack(nil), r.tracks...)
	r.mu.Unlock()
	for _, t := range tracks {
		p.subscribe(t)
	}
	return s, nil
}

func (r *Room) othersLocked(self *participant) []ParticipantState {
	var out []ParticipantState
	for _, p := range r.participants {
		if p != self {
			out = append(out, p.state())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (r *Room) snapshot() []*participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// broadcast sends sig to everyone but except.
func (r *Room) broadcast(except *participant, sig Signal) {
	for _, p := range r.snapshot() {
		if p != except {
			p.emit(sig)
		}
	}
}

// publish handles a track (or a simulcast layer of one) arriving from p,
// and forwards it until it ends. It runs on pion's OnTrack goroutine.
func (r *Room) publish(p *participant, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if remote.Kind() == webrtc.RTPCodecTypeVideo && !p.video {
		// We told the client video is inactive. One that sends anyway
		// has it read and dropped, so pion's buffers do not fill.
		buf := make([]byte, 1500)
		for {
			if _, _, err := remote.Read(buf); err != nil {
				return
			}
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var t *publishedTrack
	for _, x := range p.published {
		if x.recv == recv {
			t = x
		}
	}
	isNew := t == nil
	if isNew {
		p.nextTrack++
		t = newPublishedTrack(fmt.Sprintf("%s-%d", remote.Kind(), p.nextTrack), p, remote, recv)
		p.published = append(p.published, t)
	}
	l := t.addLayer(remote)
	p.mu.Unlock()
	t.log.Info("publishing", "rid", l.rid, "codec", t.codec.MimeType, "ssrc", l.ssrc)

	if isNew {
		r.mu.Lock()
		r.tracks = append(r.tracks, t)
		rec := r.rec
		r.mu.Unlock()
		if rec != nil {
			rec.addTrack(t)
		}
		for _, s := range r.snapshot() {
			s.subscribe(t)
		}
	}
	r.m.spawn(func() { t.drainRTCP(l) })
	t.forward(l)
	if t.layerDone() {
		r.unpublish(t)
	}
}

// unpublish removes an ended track from the room and from every
// subscriber.
func (r *Room) unpublish(t *publishedTrack) {
	r.mu.Lock()
	for i, x := range r.tracks {
		if x == t {
			r.tracks = append(r.tracks[:i], r.tracks[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	p := t.pub
	p.mu.Lock()
	for i, x := range p.published {
		if x == t {
			p.published = append(p.published[:i], p.published[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	for _, d := range t.end() {
		d.sub.unsubscribe(t)
	}
	if w := t.rec.Swap(nil); w != nil {
		w.stop() // its last segment sealed
	}
	t.log.Info("track ended")
}

// leave removes p (already closed) and tells the others.
func (r *Room) leave(p *participant, reason LeaveReason) {
	r.mu.Lock()
	if r.participants[p.info.ID] == p {
		delete(r.participants, p.info.ID)
	}
	now := r.m.cfg.Now()
	r.lastLeft = now
	r.mu.Unlock()

	st := p.state()
	st.Connected = false
	r.broadcast(p, Signal{Type: TypeParticipantLeft, Participant: &st, Reason: reason})
	p.log.Info("participant left", "reason", reason, "duration", now.Sub(p.joined).Round(time.Millisecond))
	if h := r.m.cfg.Hooks.OnParticipantLeft; h != nil {
		h(ParticipantEvent{Room: r.id, Participant: p.info, At: now, Reason: reason, Duration: now.Sub(p.joined)})
	}
	r.maybeEmpty()
}

// maybeEmpty starts the empty-room grace if nobody is left.
func (r *Room) maybeEmpty() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.participants) > 0 || r.emptyTimer != nil {
		return
	}
	r.emptyGen++
	gen := r.emptyGen
	r.emptyTimer = time.AfterFunc(r.m.cfg.EmptyRoomGrace, func() { r.m.closeIfEmpty(r, gen) })
}

// Info describes the room now.
func (r *Room) Info() RoomInfo {
	r.mu.Lock()
	parts := make([]*participant, 0, len(r.participants))
	for _, p := range r.participants {
		parts = append(parts, p)
	}
	info := RoomInfo{ID: r.id, AudioOnly: r.opts.AudioOnly, Opened: r.opened, PeakParticipants: r.peak}
	info.PublishedTracks = len(r.tracks)
	r.mu.Unlock()
	for _, p := range parts {
		info.Participants = append(info.Participants, p.state())
		c := p.counts()
		info.Subscriptions += c.subscriptions
		info.PacketsForwarded += c.packets
		info.BytesForwarded += c.bytes
	}
	sort.Slice(info.Participants, func(i, j int) bool { return info.Participants[i].ID < info.Participants[j].ID })
	return info
}

// RoomInfo is a room as metrics and the owner's dashboards see it.
type RoomInfo struct {
	ID               string
	AudioOnly        bool
	Opened           time.Time
	Participants     []ParticipantState
	PeakParticipants int
	PublishedTracks  int
	Subscriptions    int    // downstream tracks: one per (track, subscriber)
	PacketsForwarded uint64 // by live subscriptions
	BytesForwarded   uint64
}
