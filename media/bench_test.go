package media

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// BenchmarkForward measures what one forwarded 1200-byte video packet
// costs, beside the floor measured in the same run.
//
//	go test -run '^$' -bench BenchmarkForward -benchtime 20000x ./media/
//
// Sub-benchmarks, each reporting cpu-ns/pkt (process CPU time, all
// goroutines, per packet delivered to a subscriber) next to wall ns/op:
//
//	floor=aes-gcm, floor=aes-cm: SRTP encrypt + decrypt + one UDP send on
//	    loopback (and the receive that drains it): what any SFU must spend.
//	path=direct: a pion publisher straight to a pion subscriber, no SFU:
//	    the clients' own cost, which the next ones include too.
//	path=sfu/subs=N: the same publisher through the SFU to N subscribers.
//
// SFU cost per forwarded packet ≈ cpu(sfu/subs=1) − cpu(direct). For N
// subscribers the publisher's share is spread over N deliveries, so the
// difference slightly understates; see the report for the arithmetic.
func BenchmarkForward(b *testing.B) {
	b.Run("floor=aes-gcm", func(b *testing.B) { benchFloor(b, srtp.ProtectionProfileAeadAes128Gcm) })
	b.Run("floor=aes-cm", func(b *testing.B) { benchFloor(b, srtp.ProtectionProfileAes128CmHmacSha1_80) })
	b.Run("path=direct", benchDirect)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("path=sfu/subs=%d", n), func(b *testing.B) { benchSFU(b, n) })
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchPacket = 1200

func benchFloor(b *testing.B, profile srtp.ProtectionProfile) {
	keyLen, _ := profile.KeyLen()
	saltLen, _ := profile.SaltLen()
	key, salt := make([]byte, keyLen), make([]byte, saltLen)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	enc, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		b.Fatal(err)
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2000)
		for {
			if _, _, err := rx.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	to := rx.LocalAddr().(*net.UDPAddr)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, benchPacket-12)}
	raw, _ := pkt.Marshal()
	ct := make([]byte, 0, 1500)
	pt := make([]byte, 0, 1500)
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		raw[2], raw[3] = byte(i>>8), byte(i)
		c, err := enc.EncryptRTP(ct[:0], raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		// The SFU decrypts what arrives and encrypts what leaves: one
		// of each per forwarded packet.
		if _, err := dec.DecryptRTP(pt[:0], c, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.WriteToUDP(c, to); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/pkt")
	_ = tx.Close()
	_ = rx.Close()
	<-done
}

// pumper writes 1200-byte VP8 packets to a track. Sequence numbers
// continue from call to call: SRTP replay protection drops repeats.
type pumper struct {
	track *webrtc.TrackLocalStaticRTP
	pkt   rtp.Packet
	sent  int
}

func newPumper(track *webrtc.TrackLocalStaticRTP) *pumper {
	payload := make([]byte, benchPacket-12)
	payload[0], payload[1] = 0x10, 0x01 // a VP8 descriptor starting an inter frame
	return &pumper{track: track, pkt: rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: payload}}
}

// pump writes n packets in bursts, waiting for the receivers to catch up
// after each, so no socket buffer overflows and the CPU clock measures
// work, not drops. It returns the packets delivered.
func (p *pumper) pump(t testing.TB, n, subs int, delivered func() int64) int64 {
	t.Helper()
	const burst = 32
	start := delivered()
	sent := 0
	for sent < n {
		for i := 0; i < burst && sent < n; i++ {
			p.pkt.SequenceNumber++
			if p.sent%4 == 0 {
				p.pkt.Timestamp += 3000 // four packets a frame
			}
			if err := p.track.WriteRTP(&p.pkt); err != nil {
				t.Fatal(err)
			}
			sent++
			p.sent++
		}
		settle(delivered, start+int64(sent*subs), 2*time.Millisecond)
	}
	settle(delivered, start+int64(n*subs), 50*time.Millisecond)
	return delivered() - start
}

// settle waits until delivered reaches want, or makes no progress for
// quiet: a lost packet must not stall every later burst.
func settle(delivered func() int64, want int64, quiet time.Duration) {
	last, since := delivered(), time.Now()
	for last < want && time.Since(since) < quiet {
		time.Sleep(100 * time.Microsecond)
		if n := delivered(); n != last {
			last, since = n, time.Now()
		}
	}
}

func reportPump(b *testing.B, cpu time.Duration, got int64, subs int) {
	b.ReportMetric(float64(cpu)/float64(got), "cpu-ns/pkt")
	b.ReportMetric(100*(1-float64(got)/float64(b.N*subs)), "loss-%")
}

func benchDirect(b *testing.B) {
	pubAPI, err := newClientAPI(&rtcpCounters{})
	if err != nil {
		b.Fatal(err)
	}
	subAPI, err := newClientAPI(&rtcpCounters{})
	if err != nil {
		b.Fatal(err)
	}
	pub, err := pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = pub.GracefulClose(); _ = sub.GracefulClose() }()
	track, err := webrtc.NewTrackLocalStaticRTP(codecVP8.RTPCodecCapability, "cam", "pub")
	if err != nil {
		b.Fatal(err)
	}
	sender, err := pub.AddTrack(track)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	var count countingReader
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { count.read(tr) })
	if err := signalDirect(pub, sub); err != nil {
		b.Fatal(err)
	}
	waitFor(b, 10*time.Second, "direct connection", func() bool {
		return pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	p := newPumper(track)
	p.pump(b, 100, 1, count.n.Load) // warm up: OnTrack fires on the first packet
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	got := p.pump(b, b.N, 1, count.n.Load)
	b.StopTimer()
	reportPump(b, cpuTime()-cpu0, got, 1)
}

type countingReader struct{ n atomic.Int64 }

func (c *countingReader) read(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := tr.Read(buf); err != nil {
			return
		}
		c.n.Add(1)
	}
}

// signalDirect connects two PeerConnections without trickle.
func signalDirect(offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

func benchSFU(b *testing.B, subs int) {
	m := newTestManager(b, nil)
	pub := newClient(b, m, "bench", "pub", clientOptions{rawVideo: true, lean: true})
	pub.join()
	var clients []*testClient
	for i := range subs {
		c := newClient(b, m, "bench", fmt.Sprintf("sub%d", i), clientOptions{audio: true, lean: true})
		c.join()
		clients = append(clients, c)
	}
	delivered := func() int64 {
		var n int64
		for _, c := range clients {
			n += c.leanCount.Load()
		}
		return n
	}
	// The track is published with its first packet; then each
	// subscriber is offered it. Pump until every one receives.
	p := newPumper(pub.raw)
	waitFor(b, 20*time.Second, "every subscriber to receive", func() bool {
		p.pump(b, 10, subs, delivered)
		for _, c := range clients {
			if c.leanCount.Load() == 0 {
				return false
			}
		}
		return true
	})
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	got := p.pump(b, b.N, subs, delivered)
	b.StopTimer()
	reportPump(b, cpuTime()-cpu0, got, subs)
}

// BenchmarkDownTrackWrite is the SFU's own work per forwarded packet,
// without pion: layer check, renumbering, header rewrite. It must not
// allocate.
func BenchmarkDownTrackWrite(b *testing.B) {
	tr := &publishedTrack{kind: webrtc.RTPCodecTypeVideo, codec: codecVP8.RTPCodecCapability}
	l := &layer{track: tr}
	d := &downTrack{track: tr, writer: discardWriter{}, ssrc: 9, pt: 96}
	d.start(l)
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, benchPacket-12)}
	b.ReportAllocs()
	for i := range b.N {
		p.SequenceNumber = uint16(i)
		d.write(l, p, false, int64(i))
	}
}

type discardWriter struct{}

func (discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) { return len(payload), nil }
func (discardWriter) Write(b []byte) (int, error)                         { return len(b), nil }
