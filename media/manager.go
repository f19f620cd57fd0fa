package media

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// allocateEvery is how often simulcast layers are re-chosen. GCC's estimate
// moves on a scale of seconds; twice a second follows it without making a
// keyframe request storm.
const allocateEvery = 500 * time.Millisecond

// Manager owns every room. It is safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool

	// Goroutines we start are counted so Close can wait for them; gate
	// keeps a goroutine from starting once Close has begun waiting.
	gate     sync.Mutex
	stopping bool
	wg       sync.WaitGroup
	stop     chan struct{}

	// Totals of subscriptions that have ended, so Stats counts them.
	retiredPackets, retiredBytes atomic.Uint64
	retiredNACKsSent             atomic.Uint64
	retiredNACKsRecv             atomic.Uint64
	retiredPLIsSent              atomic.Uint64
	retiredPLIsRecv              atomic.Uint64
	iceRestarts, glare           atomic.Uint64

	// budget, if set, replaces a subscriber's bandwidth estimate (tests).
	budget atomic.Pointer[func(participantID string) int]
}

// NewManager checks cfg and starts the manager.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "media"),
		rooms: map[string]*Room{},
		stop:  make(chan struct{}),
	}
	m.spawn(m.allocator)
	return m, nil
}

// OpenRoom opens a room with opts, or returns the open room of that id if
// its options are the same. Join opens rooms with default options, so the
// gateway calls OpenRoom first only for a voice call or a lower limit.
func (m *Manager) OpenRoom(id string, opts RoomOptions) (*Room, error) {
	if !validID(id) {
		return nil, errorf("open room", CodeInvalid, "room id must be 1-64 letters, digits, '.', '_' or '-'")
	}
	return m.room(id, &opts)
}

func (m *Manager) room(id string, opts *RoomOptions) (*Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if r := m.rooms[id]; r != nil {
		if opts != nil && *opts != r.opts {
			return nil, errorf("open room", CodeRoomMismatch, "room %s is already open with other options", id)
		}
		return r, nil
	}
	if len(m.rooms) >= m.cfg.MaxRooms {
		return nil, errorf("open room", CodeTooManyRooms, "too many rooms open (%d)", m.cfg.MaxRooms)
	}
	if opts == nil {
		opts = &RoomOptions{}
	}
	r := newRoom(m, id, *opts)
	m.rooms[id] = r
	r.log.Info("room opened", "audio_only", opts.AudioOnly)
	// Nobody may come: a room opened for a call that is never answered
	// closes after the same grace as one everybody left.
	r.maybeEmpty()
	return r, nil
}

// Join puts a participant into a room, opening the room if needed, and
// returns the session through which the gateway passes the client's
// signals. send delivers signals to the client; it is called from one
// goroutine at a time, in order, and an error from it means the transport
// is gone (as if Session.Close were called). The first signal is
// "joined". A Join with the id of a participant still in the room (kept
// through ReconnectGrace, or still connected on a stale socket) resumes
// that participant on the new transport.
func (m *Manager) Join(ctx context.Context, roomID string, info ParticipantInfo, send func(Signal) error) (*Session, error) {
	if !validID(roomID) {
		return nil, errorf("join", CodeInvalid, "room id must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if !validID(info.ID) {
		return nil, errorf("join", CodeInvalid, "participant id must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if send == nil {
		return nil, errorf("join", CodeInvalid, "send is required")
	}
	for {
		r, err := m.room(roomID, nil)
		if err != nil {
			return nil, err
		}
		s, err := r.join(info, send)
		if !errors.Is(err, errRetry) {
			return s, err
		}
		// The room closed, or the participant is on its way out, between
		// our lookup and our join: a moment later it is gone.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Room returns the open room with that id.
func (m *Manager) Room(id string) (*Room, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	return r, ok
}

// Rooms describes every open room, by id.
func (m *Manager) Rooms() []RoomInfo {
	var out []RoomInfo
	for _, r := range m.roomList() {
		out = append(out, r.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (m *Manager) roomList() []*Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	return out
}

// CloseRoom ends a call for everybody: each client gets "room-closed" and
// its session ends.
func (m *Manager) CloseRoom(id string) error {
	m.mu.Lock()
	r := m.rooms[id]
	m.mu.Unlock()
	if r == nil {
		return errorf("close room", CodeRoomNotFound, "no open room %s", id)
	}
	m.closeRoom(r, ReasonClosed, "closed")
	return nil
}

// closeRoom closes the room to new joins (a Join with its id opens a new
// room), then removes everyone in it.
func (m *Manager) closeRoom(r *Room, reason LeaveReason, why string) {
	m.mu.Lock()
	r.mu.Lock()
	already := r.closed
	m.finishLocked(r)
	r.mu.Unlock()
	m.mu.Unlock()
	if already {
		return
	}
	final := Signal{Type: TypeRoomClosed}
	for {
		parts := r.snapshot()
		if len(parts) == 0 {
			break
		}
		for _, p := range parts {
			p.close(reason, &final)
		}
		// One being closed by someone else (its grace ran out) leaves
		// the map a moment later.
		time.Sleep(time.Millisecond)
	}
	m.roomClosed(r, why)
}

// closeIfEmpty is the empty-room timer: the room closes if nobody came
// back since the timer of generation gen was set.
func (m *Manager) closeIfEmpty(r *Room, gen uint64) {
	m.mu.Lock()
	r.mu.Lock()
	if r.closed || len(r.participants) > 0 || r.emptyGen != gen {
		r.mu.Unlock()
		m.mu.Unlock()
		return
	}
	m.finishLocked(r)
	r.mu.Unlock()
	m.mu.Unlock()
	m.roomClosed(r, "empty")
}

// finishLocked marks r closed and forgets it. m.mu and r.mu held.
func (m *Manager) finishLocked(r *Room) {
	r.closed = true
	if r.emptyTimer != nil {
		r.emptyTimer.Stop()
		r.emptyTimer = nil
	}
	if m.rooms[r.id] == r {
		delete(m.rooms, r.id)
	}
}

func (m *Manager) roomClosed(r *Room, why string) {
	now := m.cfg.Now()
	r.mu.Lock()
	end := r.lastLeft
	peak := r.peak
	r.mu.Unlock()
	if end.IsZero() {
		end = r.opened
	}
	// The call lasted until the last person left, not until the grace
	// that followed ran out.
	dur := end.Sub(r.opened)
	if rec, ok := r.Recording(); ok {
		_, _ = rec.Stop() // errors are logged by Stop
	}
	r.log.Info("room closed", "reason", why, "duration", dur.Round(time.Millisecond), "peak", peak)
	if h := m.cfg.Hooks.OnRoomClosed; h != nil {
		h(RoomEvent{Room: r.id, AudioOnly: r.opts.AudioOnly, Opened: r.opened, Closed: now, Duration: dur,
			PeakParticipants: peak, Reason: why})
	}
}

// Close removes everybody from every room, closes the rooms and waits for
// every goroutine media started.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	for _, r := range m.roomList() {
		m.closeRoom(r, ReasonShutdown, "shutdown")
	}
	m.gate.Lock()
	m.stopping = true
	m.gate.Unlock()
	m.wg.Wait()
}

// spawn runs f on a goroutine Close waits for; false once Close is
// waiting.
func (m *Manager) spawn(f func()) bool {
	if !m.enter() {
		return false
	}
	go func() {
		defer m.leave()
		f()
	}()
	return true
}

// enter counts the calling goroutine (pion's, running our callback) as
// one of ours until leave.
func (m *Manager) enter() bool {
	m.gate.Lock()
	defer m.gate.Unlock()
	if m.stopping {
		return false
	}
	m.wg.Add(1)
	return true
}

func (m *Manager) leave() { m.wg.Done() }

// allocator measures simulcast layers and picks each subscriber's layer.
func (m *Manager) allocator() {
	t := time.NewTicker(allocateEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			for _, r := range m.roomList() {
				r.mu.Lock()
				tracks := append([]*publishedTrack(nil), r.tracks...)
				r.mu.Unlock()
				for _, tr := range tracks {
					for _, l := range tr.layerList() {
						l.measure(now)
					}
				}
				for _, p := range r.snapshot() {
					p.allocate()
				}
			}
		}
	}
}

func (m *Manager) estimateFor(p *participant) int {
	if f := m.budget.Load(); f != nil {
		return (*f)(p.info.ID)
	}
	return p.estimate()
}

// retire adds an ended subscription's counters to the totals.
func (m *Manager) retire(d *downTrack) {
	m.retiredPackets.Add(d.packets.Swap(0))
	m.retiredBytes.Add(d.bytes.Swap(0))
}

// Stats is the manager's state and its counters since start, for metrics.
type Stats struct {
	Rooms            int
	Participants     int
	PublishedTracks  int
	Subscriptions    int
	PacketsForwarded uint64 // RTP packets sent to subscribers (retransmissions not included)
	BytesForwarded   uint64 // their payload bytes
	NACKsSent        uint64 // NACK packets we sent publishers (loss on their uplink)
	NACKsReceived    uint64 // NACK packets subscribers sent us (loss on their downlink)
	PLIsSent         uint64 // keyframe requests we sent publishers
	PLIsReceived     uint64 // keyframe requests from subscribers
	ICERestarts      uint64
	GlareIgnored     uint64 // client offers ignored because ours was outstanding
}

// Stats returns counters summed over all rooms, live and closed.
func (m *Manager) Stats() Stats {
	st := Stats{
		PacketsForwarded: m.retiredPackets.Load(),
		BytesForwarded:   m.retiredBytes.Load(),
		NACKsSent:        m.retiredNACKsSent.Load(),
		NACKsReceived:    m.retiredNACKsRecv.Load(),
		PLIsSent:         m.retiredPLIsSent.Load(),
		PLIsReceived:     m.retiredPLIsRecv.Load(),
		ICERestarts:      m.iceRestarts.Load(),
		GlareIgnored:     m.glare.Load(),
	}
	for _, r := range m.roomList() {
		st.Rooms++
		r.mu.Lock()
		st.PublishedTracks += len(r.tracks)
		r.mu.Unlock()
		for _, p := range r.snapshot() {
			st.Participants++
			c := p.counts()
			st.Subscriptions += c.subscriptions
			st.PacketsForwarded += c.packets
			st.BytesForwarded += c.bytes
			st.NACKsSent += p.counters.nackSent.Load()
			st.NACKsReceived += p.counters.nackReceived.Load()
			st.PLIsSent += p.counters.pliSent.Load()
			st.PLIsReceived += p.counters.pliReceived.Load()
		}
	}
	return st
}
