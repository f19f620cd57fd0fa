package media

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack is one published track as one subscriber receives it. It is
// our own webrtc.TrackLocal rather than pion's TrackLocalStaticRTP, shared
// by all subscribers, because each subscriber may be on a different
// simulcast layer and so needs its own sequence numbers and timestamps, and
// because the publisher's header extensions must not reach the subscriber:
// their ids were negotiated with the publisher, not with it.
type downTrack struct {
	track *publishedTrack
	sub   *participant

	// sender is set by the subscriber's op loop after AddTrack and read
	// only there and by readRTCP, which starts afterwards.
	sender *webrtc.RTPSender

	packets atomic.Uint64
	bytes   atomic.Uint64

	mu     sync.Mutex
	writer webrtc.TrackLocalWriter // nil until bound, and after unbind
	ssrc   uint32
	pt     uint8
	// current is the layer being forwarded, target the one the allocator
	// wants; they differ until a keyframe arrives on target. current is
	// nil before the first keyframe of a simulcast track.
	current, target *layer
	switches        uint64
	// Output numbering: out = in - offset, per layer run. On a switch the
	// offsets are recomputed so the subscriber sees one continuous stream.
	seqOffset   uint16
	tsOffset    uint32
	lastSeq     uint16
	lastTS      uint32
	lastWriteNS int64
	started     bool
	hdr         rtp.Header
	extBuf      [2]rtp.Extension
}

func newDownTrack(t *publishedTrack, sub *participant) *downTrack {
	return &downTrack{track: t, sub: sub}
}

// start points the downTrack at its first layer. A single-stream track is
// forwarded from its first packet; a simulcast one from the first keyframe
// of the chosen layer, since delta frames of an unknown layer are useless.
func (d *downTrack) start(first *layer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target = first
	if !d.track.simulcast {
		d.current = first
	}
}

// TrackLocal.

func (d *downTrack) ID() string                { return d.track.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.track.pub.info.ID }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.track.kind }

func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, d.track.codec.MimeType) {
			continue
		}
		d.mu.Lock()
		d.writer = ctx.WriteStream()
		d.ssrc = uint32(ctx.SSRC())
		d.pt = uint8(c.PayloadType)
		l := d.target
		d.mu.Unlock()
		// A new subscriber's decoder can start only at a keyframe; asking
		// now rather than waiting for its PLI saves a round trip.
		if l != nil {
			l.requestKeyframe()
		}
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	d.mu.Unlock()
	return nil
}

// write forwards one packet of layer l. It runs on the publisher's
// forwarding goroutine for l (one per layer), so it is short and does not
// allocate.
func (d *downTrack) write(l *layer, p *rtp.Packet, keyframe bool, nowNS int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil {
		return
	}
	if l != d.current {
		if l != d.target || !keyframe {
			return
		}
		d.switchTo(l, p, nowNS)
	}
	seq := p.SequenceNumber - d.seqOffset
	ts := p.Timestamp - d.tsOffset

	h := &d.hdr
	*h = rtp.Header{
		Version:        2,
		Padding:        p.Padding,
		PaddingSize:    p.Header.PaddingSize,
		Marker:         p.Marker,
		PayloadType:    d.pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           d.ssrc,
		// The TWCC interceptor adds its extension here; reusing our array
		// keeps that from allocating. Nothing holds the header after
		// WriteRTP returns (the NACK buffer clones it).
		Extensions: d.extBuf[:0],
	}
	if p.PaddingSize != 0 && h.PaddingSize == 0 {
		h.PaddingSize = p.PaddingSize
	}
	if _, err := d.writer.WriteRTP(h, p.Payload); err != nil {
		return
	}
	d.packets.Add(1)
	d.bytes.Add(uint64(len(p.Payload)))
	// Retransmissions and reordered packets are older: they must not
	// move the high-water marks a later switch continues from.
	if !d.started || int16(seq-d.lastSeq) > 0 {
		d.lastSeq = seq
		d.lastTS = ts
		d.lastWriteNS = nowNS
		d.started = true
	}
}

// switchTo makes l current, with offsets chosen so its first packet
// follows the last one sent: sequence number +1, timestamp advanced by the
// wall-clock time since, so the receiver's jitter buffer sees no jump.
func (d *downTrack) switchTo(l *layer, p *rtp.Packet, nowNS int64) {
	d.current = l
	d.switches++
	if !d.started {
		d.seqOffset, d.tsOffset = 0, 0
		return
	}
	ticks := uint32(1)
	if el := nowNS - d.lastWriteNS; el > 0 {
		if t := uint32(uint64(el) * uint64(d.track.codec.ClockRate) / 1e9); t > 0 {
			ticks = t
		}
	}
	d.seqOffset = p.SequenceNumber - (d.lastSeq + 1)
	d.tsOffset = p.Timestamp - (d.lastTS + ticks)
}

// setTarget asks for layer l; the switch happens at its next keyframe,
// which we request now.
func (d *downTrack) setTarget(l *layer) {
	d.mu.Lock()
	changed := d.target != l
	d.target = l
	waiting := d.current != d.target
	d.mu.Unlock()
	if changed || waiting {
		l.requestKeyframe()
	}
}

func (d *downTrack) layers() (current, target *layer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current, d.target
}

// readRTCP reads what the subscriber says about this track. Reading is
// what drives the interceptors (NACKs are answered from the NACK
// responder's buffer, TWCC feeds the bandwidth estimate); what is left for
// us is keyframe requests, passed to the publisher.
func (d *downTrack) readRTCP() {
	buf := make([]byte, 1500)
	for {
		n, attr, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := attr.GetRTCPPackets(buf[:n])
		if err != nil {
			continue
		}
		d.mu.Lock()
		ssrc, l := d.ssrc, d.target
		d.mu.Unlock()
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				if p.MediaSSRC == ssrc {
					d.sub.counters.nackReceived.Add(1)
				}
			case *rtcp.PictureLossIndication:
				if p.MediaSSRC == ssrc {
					d.sub.counters.pliReceived.Add(1)
					if l != nil {
						l.requestKeyframe()
					}
				}
			case *rtcp.FullIntraRequest:
				if firFor(p, ssrc) {
					d.sub.counters.pliReceived.Add(1)
					if l != nil {
						l.requestKeyframe()
					}
				}
			}
		}
	}
}

func firFor(f *rtcp.FullIntraRequest, ssrc uint32) bool {
	if f.MediaSSRC == ssrc {
		return true
	}
	for _, e := range f.FIR {
		if e.SSRC == ssrc {
			return true
		}
	}
	return false
}
