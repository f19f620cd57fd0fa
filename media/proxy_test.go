package media

import (
	"errors"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// lossyProxy is a UDP relay between one client and the SFU that drops a
// share of the media packets, as a bad mobile link does (tc netem is not
// available on the CI kernel). The client is told the SFU lives at the
// proxy (its candidates are rewritten) and the SFU is told nothing about
// the client, so it only knows the proxy's upstream socket, learned as a
// peer-reflexive candidate: every packet of the call crosses the proxy.
//
// Only RTP and RTCP (first byte 128-191, RFC 7983) are dropped: STUN and
// DTLS get through, so the call sets up in the same time each run and the
// test measures media loss recovery, not handshake retries.
type lossyProxy struct {
	face *net.UDPConn // the client's side
	up   *net.UDPConn // the SFU's side

	mu     sync.Mutex
	rng    *rand.Rand
	loss   float64 // 0..1
	target *net.UDPAddr
	client *net.UDPAddr

	blackhole atomic.Bool // drop everything: the path is dead
	// capBps, when set, shapes the SFU→client direction to that many bit/s
	// through a queue of at most capQueue of delay, tail-dropping beyond:
	// a slow downlink, as tc tbf would make one.
	capBps   atomic.Int64
	capQueue time.Duration
	shaped   chan []byte
	capDrops atomic.Int64
	queued   atomic.Int64 // bytes in the capped queue
	dwg      sync.WaitGroup
	dropped  atomic.Int64
	passed   atomic.Int64
	wg       sync.WaitGroup
}

func newLossyProxy(t testing.TB, loss float64, seed int64) *lossyProxy {
	t.Helper()
	face, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{face: face, up: up, rng: rand.New(rand.NewSource(seed)), loss: loss}
	p.wg.Add(2)
	go p.pump(face, true)
	go p.pump(up, false)
	t.Cleanup(func() {
		_ = face.Close()
		_ = up.Close()
		p.wg.Wait() // the pumps: nothing is queued for shaping after this
		if p.shaped != nil {
			close(p.shaped)
			p.dwg.Wait()
		}
	})
	return p
}

func (p *lossyProxy) drop(b []byte) bool {
	if p.blackhole.Load() {
		return true
	}
	if len(b) == 0 || b[0] < 128 || b[0] > 191 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64() < p.loss
}

func (p *lossyProxy) pump(from *net.UDPConn, fromClient bool) {
	defer p.wg.Done()
	buf := make([]byte, 1600)
	for {
		n, addr, err := from.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		if fromClient {
			p.client = addr
		}
		to, client := p.target, p.client
		p.mu.Unlock()
		if p.drop(buf[:n]) {
			p.dropped.Add(1)
			continue
		}
		p.passed.Add(1)
		if !fromClient && client != nil && p.capBps.Load() > 0 {
			p.shape(buf[:n])
			continue
		}
		if fromClient && to != nil {
			_, _ = p.up.WriteToUDP(buf[:n], to)
		} else if !fromClient && client != nil {
			_, _ = p.face.WriteToUDP(buf[:n], client)
		}
	}
}

// limit caps the SFU→client direction at bps with a queue of at most
// queue's worth of delay.
func (p *lossyProxy) limit(bps int64, queue time.Duration) {
	p.capQueue = queue
	p.shaped = make(chan []byte, 4096)
	p.capBps.Store(bps)
	p.dwg.Add(1)
	go p.drain()
}

// shape queues a packet for the capped downlink, or drops it when the
// queue already holds capQueue of sending time.
func (p *lossyProxy) shape(b []byte) {
	limit := int(p.capBps.Load() * int64(p.capQueue) / int64(time.Second) / 8)
	if p.queued.Load()+int64(len(b)) > int64(limit) {
		p.capDrops.Add(1)
		return
	}
	p.queued.Add(int64(len(b)))
	select {
	case p.shaped <- append([]byte(nil), b...):
	default:
		p.queued.Add(-int64(len(b)))
		p.capDrops.Add(1)
	}
}

// drain sends the capped downlink's queue at the capped rate.
func (p *lossyProxy) drain() {
	defer p.dwg.Done()
	next := time.Now()
	closed := false
	for b := range p.shaped {
		p.queued.Add(-int64(len(b)))
		if closed {
			continue
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
		next = next.Add(time.Duration(int64(len(b)) * 8 * int64(time.Second) / p.capBps.Load()))
		time.Sleep(time.Until(next))
		p.mu.Lock()
		client := p.client
		p.mu.Unlock()
		if _, err := p.face.WriteToUDP(b, client); err != nil && errors.Is(err, net.ErrClosed) {
			closed = true
		}
	}
}

// rewrite turns the SFU's loopback UDP candidate into one pointing at the
// proxy and remembers the real address as the proxy's target; it drops
// every other candidate so no path bypasses the proxy.
func (p *lossyProxy) rewrite(c webrtc.ICECandidateInit) (webrtc.ICECandidateInit, bool) {
	f := strings.Fields(c.Candidate)
	// candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
	if len(f) < 8 || !strings.EqualFold(f[2], "udp") || f[4] != "127.0.0.1" || f[7] != "host" {
		return c, false
	}
	port, err := strconv.Atoi(f[5])
	if err != nil {
		return c, false
	}
	p.mu.Lock()
	if p.target != nil {
		p.mu.Unlock()
		return c, false // one SFU address is all the relay carries
	}
	p.target = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	p.mu.Unlock()
	face := p.face.LocalAddr().(*net.UDPAddr)
	f[5] = strconv.Itoa(face.Port)
	c.Candidate = strings.Join(f, " ")
	return c, true
}
