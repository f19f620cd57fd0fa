package media

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
)

// This file is a WebRTC client written with pion, standing in for a
// browser: it joins through Manager.Join exactly as the gateway's /ws
// handler will, publishes synthetic VP8 and Opus, and counts what it
// receives. Frames carry "from=<id>;" so a receiver can tell whose media a
// packet is (no echo, no mix-ups) without decoding anything.

// testLogger logs to stderr when MEDIA_TEST_LOG is set (debug, info, warn),
// else nowhere: pion goroutines may log after a test has finished, when
// t.Log would panic.
func testLogger() *slog.Logger {
	var lvl slog.Level
	switch os.Getenv("MEDIA_TEST_LOG") {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	default:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// newTestManager is a Manager for in-process tests: loopback candidates,
// quick graces, defaults otherwise. Closed when the test ends.
func newTestManager(t testing.TB, edit func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		IncludeLoopback: true,
		EmptyRoomGrace:  2 * time.Second,
		ReconnectGrace:  3 * time.Second,
		Logger:          testLogger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

type clientOptions struct {
	audio, video bool
	simulcast    []string // rids, low to high; replaces the plain video track
	frameBytes   int      // per video frame (default 1000)
	// proxy, if set, carries all of this client's traffic: server
	// candidates are rewritten to it and ours are not sent.
	proxy *lossyProxy
	info  ParticipantInfo
	// rawVideo publishes video through a TrackLocalStaticRTP the caller
	// writes packets to (benchmarks), instead of startMedia's frames.
	rawVideo bool
	// lean receivers only count packets: benchmarks measure the SFU,
	// not the test client's bookkeeping.
	lean bool
	// iceServers are the client's STUN/TURN servers; relayOnly makes it
	// use relay candidates only (ICETransportPolicyRelay), as a browser
	// behind a network that allows no direct UDP.
	iceServers []webrtc.ICEServer
	relayOnly  bool
}

// recvTrack is what a client received on one track.
type recvTrack struct {
	streamID, kind string
	packets        atomic.Int64
	frames         atomic.Int64 // packets carrying a frame start marker
	echo           atomic.Int64 // marked as sent by the receiver itself
	foreign        atomic.Int64 // marked by someone other than the stream's owner
	gaps           atomic.Int64 // sequence numbers skipped (loss not recovered)
	mu             sync.Mutex
	lastSeq        uint16
	started        bool
	byLayer        map[string]int64 // "rid=" marker → frame starts
	lastLayer      string
	seen           map[uint16]bool
	maxSeq         uint32 // extended
}

type testClient struct {
	t    testing.TB
	m    *Manager
	room string
	id   string
	opts clientOptions
	pc   *webrtc.PeerConnection
	rtcp *rtcpCounters

	sessMu sync.Mutex
	sess   *Session

	sigs    chan Signal
	leaving atomic.Bool // sent "leave": the server closing us is expected
	// beforeOffer, if set, runs when a server offer arrives, before it is
	// applied (glare tests).
	beforeOffer func(offer Signal)
	stop        chan struct{}
	stopped     sync.Once
	wg          sync.WaitGroup

	mu        sync.Mutex
	tracks    map[string]*recvTrack // streamID/kind
	events    []Signal
	joined    []Signal
	cands     []webrtc.ICECandidateInit
	proxyMode atomic.Bool

	audio, video *webrtc.TrackLocalStaticSample
	raw          *webrtc.TrackLocalStaticRTP
	leanCount    atomic.Int64
	layers       []*webrtc.TrackLocalStaticRTP
	layerSender  *webrtc.RTPSender
	forceKey     atomic.Bool
	frameNo      atomic.Int64
}

func newClientAPI(counters *rtcpCounters) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(codecOpus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := me.RegisterCodec(codecVP8, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	logs := pionLogs{testLogger()}
	reg := &interceptor.Registry{}
	reg.Add(counters)
	if err := webrtc.ConfigureNackWithOptions(me, reg, []nack.GeneratorOption{nack.WithGeneratorLoggerFactory(logs)},
		nack.WithResponderLoggerFactory(logs)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReportsWithOptions(reg, []report.ReceiverOption{report.WithReceiverLoggerFactory(logs)},
		report.WithSenderLoggerFactory(logs)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSenderWithOptions(me, reg, twcc.WithLoggerFactory(logs)); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICETimeouts(time.Second, 2*time.Second, 200*time.Millisecond)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

// newClient makes a client's PeerConnection and tracks; join connects it.
func newClient(t testing.TB, m *Manager, room, id string, opts clientOptions) *testClient {
	t.Helper()
	c := &testClient{
		t: t, m: m, room: room, id: id, opts: opts,
		rtcp:   &rtcpCounters{},
		sigs:   make(chan Signal, 1024),
		stop:   make(chan struct{}),
		tracks: map[string]*recvTrack{},
	}
	if c.opts.info.ID == "" {
		c.opts.info = ParticipantInfo{ID: id, Name: id}
	}
	if c.opts.frameBytes == 0 {
		c.opts.frameBytes = 1000
	}
	c.proxyMode.Store(opts.proxy != nil)
	api, err := newClientAPI(c.rtcp)
	if err != nil {
		t.Fatal(err)
	}
	pcCfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, ICEServers: opts.iceServers}
	if opts.relayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	c.pc, err = api.NewPeerConnection(pcCfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.audio {
		c.audio, err = webrtc.NewTrackLocalStaticSample(codecOpus.RTPCodecCapability, "mic", id)
		if err != nil {
			t.Fatal(err)
		}
		c.addSendTrack(c.audio)
	}
	switch {
	case len(opts.simulcast) > 0:
		for _, rid := range opts.simulcast {
			tr, err := webrtc.NewTrackLocalStaticRTP(codecVP8.RTPCodecCapability, "cam", id, webrtc.WithRTPStreamID(rid))
			if err != nil {
				t.Fatal(err)
			}
			c.layers = append(c.layers, tr)
		}
		tr, err := c.pc.AddTransceiverFromTrack(c.layers[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range c.layers[1:] {
			if err := tr.Sender().AddEncoding(l); err != nil {
				t.Fatal(err)
			}
		}
		c.layerSender = tr.Sender()
		for _, rid := range opts.simulcast {
			c.readSenderRTCP(tr.Sender(), rid)
		}
	case opts.rawVideo:
		c.raw, err = webrtc.NewTrackLocalStaticRTP(codecVP8.RTPCodecCapability, "cam", id)
		if err != nil {
			t.Fatal(err)
		}
		c.addSendTrack(c.raw)
	case opts.video:
		c.video, err = webrtc.NewTrackLocalStaticSample(codecVP8.RTPCodecCapability, "cam", id)
		if err != nil {
			t.Fatal(err)
		}
		c.addSendTrack(c.video)
	}
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil || c.proxyMode.Load() {
			return
		}
		init := cand.ToJSON()
		c.handle(Signal{Type: TypeCandidate, Candidate: &init})
	})
	c.pc.OnTrack(c.onTrack)
	t.Cleanup(c.close)
	return c
}

func (c *testClient) addSendTrack(tr webrtc.TrackLocal) {
	tx, err := c.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatal(err)
	}
	c.readSenderRTCP(tx.Sender(), "")
}

// readSenderRTCP drives the client's NACK responder and answers PLIs with
// a keyframe, as a browser's encoder does.
func (c *testClient) readSenderRTCP(s *webrtc.RTPSender, rid string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			var n int
			var attr interceptor.Attributes
			var err error
			if rid != "" {
				n, attr, err = s.ReadSimulcast(buf, rid)
			} else {
				n, attr, err = s.Read(buf)
			}
			if err != nil {
				return
			}
			pkts, err := attr.GetRTCPPackets(buf[:n])
			if err != nil {
				continue
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					c.forceKey.Store(true)
				}
			}
		}
	}()
}

// join joins the room and sends the first offer.
func (c *testClient) join() {
	c.t.Helper()
	sess, err := c.m.Join(context.Background(), c.room, c.opts.info, c.deliver)
	if err != nil {
		c.t.Fatalf("%s: join: %v", c.id, err)
	}
	c.setSession(sess)
	c.wg.Add(1)
	go c.signalLoop()
	c.offer(false)
}

// rejoin joins again with the same participant id, as a client whose
// WebSocket dropped: the PeerConnection is kept.
func (c *testClient) rejoin() Signal {
	c.t.Helper()
	c.mu.Lock()
	n := len(c.joined)
	c.mu.Unlock()
	sess, err := c.m.Join(context.Background(), c.room, c.opts.info, c.deliver)
	if err != nil {
		c.t.Fatalf("%s: rejoin: %v", c.id, err)
	}
	c.setSession(sess)
	var got Signal
	waitFor(c.t, 5*time.Second, "joined after rejoin", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.joined) > n {
			got = c.joined[len(c.joined)-1]
			return true
		}
		return false
	})
	return got
}

func (c *testClient) setSession(s *Session) {
	c.sessMu.Lock()
	c.sess = s
	c.sessMu.Unlock()
}

func (c *testClient) session() *Session {
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	return c.sess
}

// deliver is the send function given to Join.
func (c *testClient) deliver(s Signal) error {
	select {
	case c.sigs <- s:
		return nil
	case <-c.stop:
		return fmt.Errorf("client stopped")
	}
}

func (c *testClient) handle(s Signal) {
	sess := c.session()
	if sess == nil {
		return
	}
	if err := sess.Handle(context.Background(), s); err != nil && ErrorCode(err) != CodeSessionClosed {
		c.errorf("handle %s: %v", s.Type, err)
	}
}

func (c *testClient) offer(restart bool) {
	c.t.Helper()
	offer, err := c.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		c.t.Fatalf("%s: create offer: %v", c.id, err)
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatalf("%s: set local offer: %v", c.id, err)
	}
	c.handle(Signal{Type: TypeOffer, SDP: &offer})
}

func (c *testClient) signalLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case s := <-c.sigs:
			c.onSignal(s)
		}
	}
}

// errorf reports a client failure unless the client is closing, when
// failures are expected (the server renegotiates as others leave).
func (c *testClient) errorf(format string, args ...any) {
	if c.leaving.Load() {
		return
	}
	select {
	case <-c.stop:
	default:
		c.t.Errorf(c.id+": "+format, args...)
	}
}

func (c *testClient) onSignal(s Signal) {
	switch s.Type {
	case TypeOffer:
		if c.beforeOffer != nil {
			c.beforeOffer(s)
		}
		if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			// The protocol makes the client polite; pion cannot roll
			// back, so these tests never offer while the server might.
			c.errorf("glare: server offer while ours is outstanding")
			return
		}
		if err := c.pc.SetRemoteDescription(*s.SDP); err != nil {
			c.errorf("set remote offer: %v", err)
			return
		}
		c.flushCandidates()
		answer, err := c.pc.CreateAnswer(nil)
		if err != nil {
			c.errorf("answer: %v", err)
			return
		}
		if err := c.pc.SetLocalDescription(answer); err != nil {
			c.errorf("set local answer: %v", err)
			return
		}
		c.handle(Signal{Type: TypeAnswer, SDP: &answer})
	case TypeAnswer:
		if err := c.pc.SetRemoteDescription(*s.SDP); err != nil {
			c.errorf("set remote answer: %v", err)
			return
		}
		c.flushCandidates()
	case TypeCandidate:
		cand := *s.Candidate
		if c.proxyMode.Load() {
			var ok bool
			if cand, ok = c.opts.proxy.rewrite(cand); !ok {
				return
			}
		}
		rd := c.pc.RemoteDescription()
		if uf := candidateUfrag(cand); rd == nil || (uf != "" && uf != iceUfrag(rd.SDP)) {
			c.mu.Lock()
			c.cands = append(c.cands, cand)
			c.mu.Unlock()
			return
		}
		_ = c.pc.AddICECandidate(cand)
	case TypeJoined:
		c.mu.Lock()
		c.joined = append(c.joined, s)
		c.mu.Unlock()
	default:
		c.mu.Lock()
		c.events = append(c.events, s)
		c.mu.Unlock()
	}
}

func (c *testClient) flushCandidates() {
	c.mu.Lock()
	cands := c.cands
	c.cands = nil
	c.mu.Unlock()
	cur := iceUfrag(c.pc.RemoteDescription().SDP)
	for _, cand := range cands {
		if uf := candidateUfrag(cand); uf == "" || uf == cur {
			_ = c.pc.AddICECandidate(cand)
		}
	}
}

func (c *testClient) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if c.opts.lean {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			c.leanCount.Add(1)
		}
	}
	key := tr.StreamID() + "/" + tr.Kind().String()
	c.mu.Lock()
	rt := c.tracks[key]
	if rt == nil {
		rt = &recvTrack{streamID: tr.StreamID(), kind: tr.Kind().String(), byLayer: map[string]int64{}, seen: map[uint16]bool{}}
		c.tracks[key] = rt
	}
	c.mu.Unlock()
	c.wg.Add(1)
	defer c.wg.Done()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		rt.packets.Add(1)
		rt.mu.Lock()
		if rt.started {
			if d := pkt.SequenceNumber - rt.lastSeq; d > 1 && d < 1000 {
				rt.gaps.Add(int64(d - 1))
			}
		}
		if !rt.started || int16(pkt.SequenceNumber-rt.lastSeq) > 0 {
			rt.lastSeq = pkt.SequenceNumber
			rt.started = true
		}
		rt.seen[pkt.SequenceNumber] = true
		if from, layer, ok := marker(pkt.Payload); ok {
			rt.frames.Add(1)
			if from == c.id {
				rt.echo.Add(1)
			}
			if from != rt.streamID {
				rt.foreign.Add(1)
			}
			rt.byLayer[layer]++
			rt.lastLayer = layer
		}
		rt.mu.Unlock()
	}
}

// marker finds "from=ID;" and "rid=R;" in a payload.
func marker(p []byte) (from, layer string, ok bool) {
	i := bytes.Index(p, []byte("from="))
	if i < 0 {
		return "", "", false
	}
	rest := p[i+5:]
	j := bytes.IndexByte(rest, ';')
	if j < 0 {
		return "", "", false
	}
	from = string(rest[:j])
	if k := bytes.Index(rest, []byte("rid=")); k >= 0 {
		r := rest[k+4:]
		if e := bytes.IndexByte(r, ';'); e >= 0 {
			layer = string(r[:e])
		}
	}
	return from, layer, true
}

func frame(from, rid string, n int64, key bool, size int) []byte {
	b := make([]byte, size)
	if !key {
		b[0] = 0x01 // VP8 frame tag: P bit set, an inter frame
	}
	copy(b[3:], fmt.Sprintf("from=%s;rid=%s;n=%d;", from, rid, n))
	return b
}

// startMedia sends 30 video frames and 50 audio packets a second until
// the client closes. Keyframes every 2 s and when asked with PLI.
func (c *testClient) startMedia() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var n int64
		var packetizers []rtp.Packetizer
		var midID, ridID uint8
		for i := range c.layers {
			packetizers = append(packetizers, rtp.NewPacketizer(1200, 96, uint32(i+1), &codecs.VP8Payloader{EnablePictureID: true},
				rtp.NewRandomSequencer(), 90000))
		}
		var lastVideo time.Time
		for {
			select {
			case <-c.stop:
				return
			case now := <-tick.C:
				n++
				if c.audio != nil {
					_ = c.audio.WriteSample(pionmedia.Sample{Data: frame(c.id, "", n, false, 80), Duration: 20 * time.Millisecond})
				}
				if now.Sub(lastVideo) < 33*time.Millisecond {
					continue
				}
				lastVideo = now
				f := c.frameNo.Add(1)
				key := f%60 == 1 || c.forceKey.Swap(false)
				if c.video != nil {
					_ = c.video.WriteSample(pionmedia.Sample{Data: frame(c.id, "", f, key, c.opts.frameBytes), Duration: 33 * time.Millisecond})
				}
				if len(c.layers) > 0 {
					if midID == 0 {
						midID, ridID = extIDs(c.layerSender)
					}
					mid := c.layerMid()
					if mid == "" {
						continue
					}
					for i, l := range c.layers {
						size := c.opts.frameBytes << (2 * i) // each layer four times the one below
						for _, pkt := range packetizers[i].Packetize(frame(c.id, l.RID(), f, key, size), 3000) {
							_ = pkt.Header.SetExtension(midID, []byte(mid))
							_ = pkt.Header.SetExtension(ridID, []byte(l.RID()))
							_ = l.WriteRTP(pkt)
						}
					}
				}
			}
		}
	}()
}

func (c *testClient) layerMid() string {
	for _, tr := range c.pc.GetTransceivers() {
		if tr.Sender() == c.layerSender {
			return tr.Mid()
		}
	}
	return ""
}

func extIDs(s *webrtc.RTPSender) (mid, rid uint8) {
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			mid = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(e.ID)
		}
	}
	return mid, rid
}

// received returns what c got from participant from, of kind.
func (c *testClient) received(from, kind string) *recvTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracks[from+"/"+kind]
}

func (c *testClient) packetsFrom(from, kind string) int64 {
	if rt := c.received(from, kind); rt != nil {
		return rt.packets.Load()
	}
	return 0
}

func (c *testClient) trackKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k := range c.tracks {
		keys = append(keys, k)
	}
	return keys
}

func (c *testClient) eventsOf(typ string) []Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Signal
	for _, s := range c.events {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// leave sends "leave" and closes the PeerConnection.
func (c *testClient) leave() {
	c.leaving.Store(true)
	c.handle(Signal{Type: TypeLeave})
	c.close()
}

func (c *testClient) close() {
	c.stopped.Do(func() {
		close(c.stop)
		_ = c.pc.GracefulClose()
		c.wg.Wait()
	})
}

func (c *testClient) iceUfrag() string {
	if d := c.pc.CurrentLocalDescription(); d != nil {
		return iceUfrag(d.SDP)
	}
	return ""
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPackets waits until c has more than n packets of kind from each of
// froms.
func waitPackets(t testing.TB, c *testClient, kind string, n int64, timeout time.Duration, froms ...string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s to receive %d %s packets from %s", c.id, n, kind, strings.Join(froms, ",")), func() bool {
		for _, f := range froms {
			if c.packetsFrom(f, kind) <= n {
				return false
			}
		}
		return true
	})
}
