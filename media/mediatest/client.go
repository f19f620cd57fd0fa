package mediatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/tacklegate/tacklegate/media"
)

// FreezeAfter is how long a video track may go without a complete frame
// before it counts as a freeze.
const FreezeAfter = 500 * time.Millisecond

// Options configure a client.
type Options struct {
	// Media is what the client publishes, looped; nil: receive only.
	Media *Media
	// Offset starts the clip at this frame, so that many publishers do
	// not send their keyframes in step.
	Offset int
	// Mux, if set, carries this client's ICE traffic over a socket shared
	// with other clients (NewMux): one large receive buffer for the whole
	// load generator instead of a small one per client.
	Mux ice.UDPMux
}

// NewMux opens a shared loopback UDP socket with a receive buffer of
// bufBytes (the kernel caps it at net.core.rmem_max) for Options.Mux.
func NewMux(bufBytes int) (ice.UDPMux, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if bufBytes > 0 {
		_ = conn.SetReadBuffer(bufBytes) // best effort
		_ = conn.SetWriteBuffer(bufBytes)
	}
	return webrtc.NewICEUDPMux(nil, conn), nil
}

// Client is one participant: one PeerConnection over one signaling
// WebSocket, as the room page does it.
type Client struct {
	pc  *webrtc.PeerConnection
	ws  *websocket.Conn
	wmu sync.Mutex

	opts      Options
	offerSent time.Time
	firstRTP  atomic.Int64 // unix ns of the first RTP packet received
	firstVid  atomic.Int64
	connected chan struct{}
	connOnce  sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	tracks []*TrackStats
	err    error
}

// TrackStats counts one received track.
type TrackStats struct {
	Kind string
	mu   sync.Mutex
	recv int64
	// extended highest sequence number and the first one
	first, highest int64
	started        bool
	lastFrame      time.Time
	freezes        int64
	measuring      bool
}

// TrackCounts is a snapshot of a TrackStats.
type TrackCounts struct {
	Kind     string
	Received int64
	Highest  int64 // extended sequence number
	Freezes  int64
}

func (t *TrackStats) snapshot() TrackCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TrackCounts{Kind: t.Kind, Received: t.recv, Highest: t.highest, Freezes: t.freezes}
}

func (t *TrackStats) add(seq uint16, marker bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recv++
	if !t.started {
		t.started = true
		t.first, t.highest = int64(seq), int64(seq)
	} else {
		// Extend against the highest: a step within half the space.
		cur := uint16(t.highest)
		diff := int64(int16(seq - cur))
		if diff > 0 {
			t.highest += diff
		}
	}
	if t.Kind == "video" && marker {
		if t.measuring && !t.lastFrame.IsZero() && now.Sub(t.lastFrame) > FreezeAfter {
			t.freezes++
		}
		t.lastFrame = now
	}
}

// newAPI is a pion API with the interceptors a browser has: NACK
// generator and responder, RTCP reports, TWCC feedback; loopback only.
func newAPI(mux ice.UDPMux) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	if mux != nil {
		se.SetICEUDPMux(mux)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Dial joins through the signaling WebSocket at url (ws://…/ws?…), makes
// the first offer after "joined" and starts publishing once connected.
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	api, err := newAPI(o.Mux)
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &Client{ws: ws, opts: o, connected: make(chan struct{}), stop: make(chan struct{})}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	var sig media.Signal
	if err := ws.ReadJSON(&sig); err != nil || sig.Type != media.TypeJoined {
		ws.Close()
		if err == nil {
			err = fmt.Errorf("first signal %q, want joined (%+v)", sig.Type, sig.Error)
		}
		return nil, err
	}
	ws.SetReadDeadline(time.Time{}) //nolint:errcheck
	c.pc, err = api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		ws.Close()
		return nil, err
	}
	var audio, video *webrtc.TrackLocalStaticSample
	if o.Media != nil {
		audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "bench")
		video, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "bench")
		for _, t := range []*webrtc.TrackLocalStaticSample{audio, video} {
			s, err := c.pc.AddTrack(t)
			if err != nil {
				c.Close()
				return nil, err
			}
			c.wg.Add(1)
			go func() { defer c.wg.Done(); drainRTCP(s) }()
		}
	} else {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := c.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			init := cand.ToJSON()
			c.send(media.Signal{Type: media.TypeCandidate, Candidate: &init})
		}
	})
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.connected) })
		}
	})
	c.pc.OnTrack(c.receive)
	offer, err := c.pc.CreateOffer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.offerSent = time.Now()
	c.send(media.Signal{Type: media.TypeOffer, SDP: &offer})
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.signals() }()
	if o.Media != nil {
		c.wg.Add(2)
		go func() { defer c.wg.Done(); c.play(video, o.Media.Video, o.Offset) }()
		go func() { defer c.wg.Done(); c.play(audio, o.Media.Audio, o.Offset*2) }()
	}
	return c, nil
}

func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

func (c *Client) send(sig media.Signal) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if err := c.ws.WriteJSON(sig); err != nil {
		c.fail(err)
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// Err is the first error the client met (nil while all is well).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// signals applies the server's signals: answers, its offers (renegotiation
// when tracks come and go), candidates.
func (c *Client) signals() {
	for {
		var sig media.Signal
		if err := c.ws.ReadJSON(&sig); err != nil {
			select {
			case <-c.stop:
			default:
				c.fail(fmt.Errorf("signaling: %w", err))
			}
			return
		}
		var err error
		switch sig.Type {
		case media.TypeAnswer:
			err = c.pc.SetRemoteDescription(*sig.SDP)
		case media.TypeOffer:
			if err = c.pc.SetRemoteDescription(*sig.SDP); err == nil {
				var ans webrtc.SessionDescription
				if ans, err = c.pc.CreateAnswer(nil); err == nil {
					if err = c.pc.SetLocalDescription(ans); err == nil {
						c.send(media.Signal{Type: media.TypeAnswer, SDP: &ans})
					}
				}
			}
		case media.TypeCandidate:
			if sig.Candidate != nil {
				_ = c.pc.AddICECandidate(*sig.Candidate) // a stale one is harmless
			}
		case media.TypeError:
			if sig.Error != nil {
				err = errors.New(string(sig.Error.Code) + ": " + sig.Error.Message)
			}
		case media.TypeRoomClosed:
			return
		}
		if err != nil {
			c.fail(err)
		}
	}
}

// play writes the clip's frames in real time, looping, from once the
// connection is up until Close.
func (c *Client) play(t *webrtc.TrackLocalStaticSample, frames []Frame, offset int) {
	select {
	case <-c.connected:
	case <-c.stop:
		return
	}
	i := offset % len(frames)
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		f := frames[i]
		if err := t.WriteSample(pionmedia.Sample{Data: f.Data, Duration: f.Duration}); err != nil {
			return
		}
		i = (i + 1) % len(frames)
		next = next.Add(f.Duration)
		timer.Reset(time.Until(next))
	}
}

func (c *Client) receive(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	ts := &TrackStats{Kind: t.Kind().String()}
	c.mu.Lock()
	c.tracks = append(c.tracks, ts)
	c.mu.Unlock()
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		now := time.Now()
		c.firstRTP.CompareAndSwap(0, now.UnixNano())
		if ts.Kind == "video" {
			c.firstVid.CompareAndSwap(0, now.UnixNano())
		}
		ts.add(uint16(buf[2])<<8|uint16(buf[3]), buf[1]&0x80 != 0, now)
	}
}

// JoinTime is offer sent → first RTP packet received (any kind) and →
// first video packet; zero until they arrive.
func (c *Client) JoinTime() (first, video time.Duration) {
	if n := c.firstRTP.Load(); n != 0 {
		first = time.Unix(0, n).Sub(c.offerSent)
	}
	if n := c.firstVid.Load(); n != 0 {
		video = time.Unix(0, n).Sub(c.offerSent)
	}
	return first, video
}

// Tracks snapshots what the client received, per track.
func (c *Client) Tracks() []TrackCounts {
	c.mu.Lock()
	ts := append([]*TrackStats(nil), c.tracks...)
	c.mu.Unlock()
	out := make([]TrackCounts, len(ts))
	for i, t := range ts {
		out[i] = t.snapshot()
	}
	return out
}

// Measure turns freeze counting on or off (only the steady window counts:
// a track's first frame after joining is no freeze).
func (c *Client) Measure(on bool) {
	c.mu.Lock()
	ts := append([]*TrackStats(nil), c.tracks...)
	c.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		t.measuring = on
		t.mu.Unlock()
	}
}

// Close leaves the room and releases everything.
func (c *Client) Close() {
	c.stopOnce.Do(func() {
		if c.pc != nil && c.pc.RemoteDescription() != nil {
			c.send(media.Signal{Type: media.TypeLeave})
		}
		close(c.stop)
		if c.pc != nil {
			_ = c.pc.Close()
		}
		c.ws.Close()
	})
	c.wg.Wait()
}
