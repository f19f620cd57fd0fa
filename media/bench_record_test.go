package media

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/turn/v5"
)

// BenchmarkJoinToFirstVideo: a newcomer joins a room where someone
// publishes video; the time from its first offer to the first video
// packet it receives, p50 and p95 over b.N joins (one after another, each
// leaving before the next). The server's first offer waits for ICE to
// connect (negotiate), which is on this path.
//
//	go test -run '^$' -bench JoinToFirstVideo -benchtime 40x ./media/
func BenchmarkJoinToFirstVideo(b *testing.B) {
	m := newTestManager(b, nil)
	pub := newClient(b, m, "join", "pub", clientOptions{video: true})
	pub.join()
	pub.startMedia()
	first := newClient(b, m, "join", "first", clientOptions{audio: true})
	first.join()
	waitPackets(b, first, "video", 10, 10*time.Second, "pub")
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		c := newClient(b, m, "join", fmt.Sprintf("g%d", i), clientOptions{audio: true})
		start := time.Now()
		c.join()
		waitFor(b, 10*time.Second, "first video packet", func() bool { return c.packetsFrom("pub", "video") > 0 })
		took = append(took, time.Since(start))
		c.leave()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*95+99)/100-1].Microseconds())/1000, "p95-ms")
}

// BenchmarkRecordPacket: what recording costs per 1200-byte VP8 packet,
// 5 packets a frame: the copy handed over by the
// forwarding loop, depacketizing into IVF, and at each segment AES-GCM,
// two SHA-256 passes, a journal line and two fsyncs (one for the
// segment, one for the journal). Segments are cut every 10 ms of the
// benchmark's compressed time, about one per 450 packets, three times as
// often as 10 s of a 30 fps, 5-packet-a-frame stream. Process CPU per
// packet and throughput.
//
//	go test -run '^$' -bench RecordPacket -benchtime 20000x ./media/
func BenchmarkRecordPacket(b *testing.B) {
	m := newTestManager(b, nil)
	r, err := m.OpenRoom("bench", RoomOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := m.StartRecording("bench", RecordingOptions{ID: "b", Dir: b.TempDir(), Key: recKey, SegmentDuration: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	// A stand-in published track with one layer, fed directly.
	p := newParticipant(r, ParticipantInfo{ID: "pub"})
	t := &publishedTrack{id: "video-1", kind: 2, codec: codecVP8.RTPCodecCapability, pub: p, log: p.log}
	t.downs.Store(&[]*downTrack{})
	l := &layer{track: t, ssrc: 1}
	t.layers = []*layer{l}
	rec.addTrack(t)
	w := t.rec.Load()
	w.waitKey = false
	payload := make([]byte, benchPacket-12)
	payload[0] = 0x10 // VP8 descriptor: start of partition
	var raw [][]byte
	for i := range 5 {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: 0, SSRC: 1, Marker: i == 4}, Payload: payload}
		if i > 0 {
			pkt.Payload = append([]byte{0x00}, payload[1:]...)
		}
		buf, _ := pkt.Marshal()
		raw = append(raw, buf)
	}
	start, cpu0 := time.Now(), cpuTime()
	b.ResetTimer()
	for i := range b.N {
		buf := raw[i%5]
		// Sequence numbers and timestamps move on as a 30 fps stream's do.
		buf[2], buf[3] = byte(i>>8), byte(i)
		ts := uint32(i/5) * 3000
		buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		for len(w.in) > cap(w.in)/2 {
			time.Sleep(50 * time.Microsecond) // the forwarding loop would drop; the benchmark waits
		}
		w.push(l, buf)
	}
	fin, err := rec.Stop()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(start)
	if d := w.dropped.Load(); d > 0 {
		b.Fatalf("%d packets dropped", d)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/pkt")
	b.ReportMetric(float64(len(fin.Manifest.Segments)), "segments")
	b.ReportMetric(float64(b.N)*benchPacket*8/wall.Seconds()/1e6, "Mbit/s")
}

// BenchmarkTURNRelay: the embedded TURN server relaying 1200-byte
// packets from a client's allocation to a peer on this machine (ChannelData
// after the first packets), process CPU per packet delivered. The client
// and the peer are in the process too, so this is relay + client + peer;
// the floor beside it is one plain UDP send and receive.
//
//	go test -run '^$' -bench TURNRelay -benchtime 20000x ./media/
func BenchmarkTURNRelay(b *testing.B) {
	b.Run("floor=udp", func(b *testing.B) {
		a, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		defer a.Close()
		defer c.Close()
		benchRelay(b, func(p []byte) error { _, err := a.WriteTo(p, c.LocalAddr()); return err }, c)
	})
	b.Run("path=turn", func(b *testing.B) {
		srv, err := StartTURN(TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: turnSecret, AllowLoopbackPeers: true})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		conn, _ := net.ListenPacket("udp4", "127.0.0.1:0")
		defer conn.Close()
		user, pass := TURNCredentials(turnSecret, "bench", time.Now().Add(time.Hour))
		cl, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: srv.Addr().String(), STUNServerAddr: srv.Addr().String(),
			Username: user, Password: pass, Conn: conn})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Listen(); err != nil {
			b.Fatal(err)
		}
		relay, err := cl.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		defer relay.Close()
		peer, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		defer peer.Close()
		benchRelay(b, func(p []byte) error { _, err := relay.WriteTo(p, peer.LocalAddr()); return err }, peer)
	})
}

func benchRelay(b *testing.B, send func([]byte) error, recv *net.UDPConn) {
	got := make(chan int64, 1)
	go func() {
		buf := make([]byte, 1600)
		var n int64
		for {
			_ = recv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := recv.ReadFrom(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	p := make([]byte, benchPacket)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		if err := send(p); err != nil {
			b.Fatal(err)
		}
		if i%8 == 7 {
			time.Sleep(200 * time.Microsecond) // paced, as media is, so socket buffers do not overflow
		}
	}
	n := <-got
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if n < int64(b.N)/2 {
		b.Fatalf("delivered %d of %d", n, b.N)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/pkt")
	b.ReportMetric(float64(int64(b.N)-n), "lost")
}
