package media

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeThrottle is the least time between two keyframe requests we send
// a publisher for one layer. A keyframe is several times the size of a
// delta frame; a room of eight where everyone asks at once must not make the
// publisher send nothing else. Requests inside the window are covered by the
// keyframe the first one brings.
const keyframeThrottle = 500 * time.Millisecond

// publishedTrack is one track a participant sends us, forwarded to every
// other participant. With simulcast it has several layers (one RTP stream
// each); otherwise one.
type publishedTrack struct {
	id    string // unique within the publisher; the msid track id subscribers see
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecCapability
	pub   *participant
	recv  *webrtc.RTPReceiver
	log   *slog.Logger
	// simulcast is fixed by the first layer: a stream with a rid is a
	// simulcast layer even before its siblings arrive.
	simulcast bool

	mu      sync.Mutex
	layers  []*layer
	running int  // layers whose forwarding loop is still running
	ended   bool // no more subscribers may be added

	// downs is read on every packet, so it is copy-on-write behind an
	// atomic pointer; writers hold mu.
	downs atomic.Pointer[[]*downTrack]
	// rec, while the room records, takes a copy of every packet.
	rec atomic.Pointer[trackWriter]
}

// layer is one RTP stream of a published track.
type layer struct {
	track  *publishedTrack
	rid    string
	remote *webrtc.TrackRemote
	ssrc   uint32

	packets atomic.Uint64
	bytes   atomic.Uint64
	bitrate atomic.Int64 // bit/s, smoothed, set by measure
	active  atomic.Bool  // packets arrived in the last measurement window
	lastPLI atomic.Int64 // unix nanoseconds of the last keyframe request

	// measure's own state; only the allocator goroutine touches it.
	lastBytes, lastPackets uint64
	lastAt                 time.Time
}

func newPublishedTrack(id string, pub *participant, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *publishedTrack {
	t := &publishedTrack{
		id:        id,
		kind:      remote.Kind(),
		codec:     remote.Codec().RTPCodecCapability,
		pub:       pub,
		recv:      recv,
		simulcast: remote.RID() != "",
		log:       pub.log.With("track", id),
	}
	t.downs.Store(&[]*downTrack{})
	return t
}

func (t *publishedTrack) state() TrackState {
	return TrackState{ID: t.id, Kind: t.kind.String(), Simulcast: t.simulcast}
}

func (t *publishedTrack) addLayer(remote *webrtc.TrackRemote) *layer {
	l := &layer{track: t, rid: remote.RID(), remote: remote, ssrc: uint32(remote.SSRC()), lastAt: time.Now()}
	l.active.Store(true)
	t.mu.Lock()
	t.layers = append(t.layers, l)
	t.running++
	t.mu.Unlock()
	return l
}

// layerDone reports whether l was the last running layer, so the track is
// over.
func (t *publishedTrack) layerDone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running--
	return t.running == 0
}

func (t *publishedTrack) layerList() []*layer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*layer(nil), t.layers...)
}

// addDown adds a subscriber; false if the track has ended.
func (t *publishedTrack) addDown(d *downTrack) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	old := *t.downs.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	t.downs.Store(&next)
	return true
}

func (t *publishedTrack) removeDown(d *downTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.downs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	t.downs.Store(&next)
}

// end stops new subscriptions and returns the current subscribers.
func (t *publishedTrack) end() []*downTrack {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	downs := *t.downs.Load()
	t.downs.Store(&[]*downTrack{})
	return downs
}

// forward reads one layer and writes every packet to every subscriber. It
// runs on the goroutine pion gave the OnTrack callback and returns when the
// publisher stops the track or leaves.
func (t *publishedTrack) forward(l *layer) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	video := t.kind == webrtc.RTPCodecTypeVideo
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		l.packets.Add(1)
		l.bytes.Add(uint64(n))
		key := video && isVP8Keyframe(pkt.Payload)
		now := time.Now().UnixNano()
		for _, d := range *t.downs.Load() {
			d.write(l, &pkt, key, now)
		}
		if w := t.rec.Load(); w != nil {
			w.push(l, buf[:n])
		}
	}
}

// drainRTCP reads the publisher's RTCP (sender reports) for one layer. The
// interceptors only see RTCP somebody reads: without this the receiver
// reports we send back would lack the LSR/DLSR the publisher needs for its
// round-trip time.
func (t *publishedTrack) drainRTCP(l *layer) {
	buf := make([]byte, 1500)
	for {
		var err error
		if l.rid != "" {
			_, _, err = t.recv.ReadSimulcast(buf, l.rid)
		} else {
			_, _, err = t.recv.Read(buf)
		}
		if err != nil {
			return
		}
	}
}

// requestKeyframe asks the publisher for a keyframe on this layer, at most
// once per keyframeThrottle.
func (l *layer) requestKeyframe() {
	if l.track.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastPLI.Load()
	if now-last < int64(keyframeThrottle) || !l.lastPLI.CompareAndSwap(last, now) {
		return
	}
	pc := l.track.pub.pc
	if pc == nil {
		return
	}
	if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}}); err != nil {
		l.track.log.Debug("keyframe request failed", "rid", l.rid, "err", err)
	}
}

// measure updates the layer's bitrate from its byte counter. Called by the
// allocator every tick.
func (l *layer) measure(now time.Time) {
	bytes, packets := l.bytes.Load(), l.packets.Load()
	dt := now.Sub(l.lastAt).Seconds()
	if dt <= 0 {
		return
	}
	inst := int64(float64(bytes-l.lastBytes) * 8 / dt)
	old := l.bitrate.Load()
	if old == 0 {
		l.bitrate.Store(inst)
	} else {
		// Smoothed so one large keyframe does not look like a new rate.
		l.bitrate.Store((old + inst) / 2)
	}
	l.active.Store(packets != l.lastPackets)
	l.lastBytes, l.lastPackets, l.lastAt = bytes, packets, now
}
