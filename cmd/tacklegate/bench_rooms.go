package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/media/mediatest"
)

// benchRooms is `tacklegate bench rooms`: N rooms of two participants
// publishing pre-encoded 360p VP8 + Opus through the SFU, which runs in a
// child process of its own (pinned to one core, the load generator to the
// other, when taskset is there), so that its CPU is measured alone.
// It reports join time (offer sent → first RTP), CPU per forwarded packet
// beside the floor measured in the same run, memory per participant (ΔRSS
// after GC between N and 2N participants), loss, NACKs and freezes, and
// whether goroutines and memory come back after join/leave churn.
func benchRooms(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench rooms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rooms := fs.Int("rooms", 100, "rooms of two participants each")
	steady := fs.Duration("steady", 20*time.Second, "how long to measure forwarding with every room up")
	churn := fs.Duration("churn", time.Minute, "how long to join and leave rooms afterwards (0: no churn)")
	churnRooms := fs.Int("churn-rooms", 10, "rooms opened and closed per churn cycle")
	parallel := fs.Int("parallel", 8, "rooms being joined at once")
	fill := fs.Duration("fill", 25*time.Second, "how long rooms run before memory is measured (the SFU's retransmission buffers fill over ~17 s of video)")
	pin := fs.Bool("pin", true, "pin the SFU to CPU 0 and the load generator to CPU 1 with taskset (when there are 2+ CPUs)")
	big := fs.Int("big", 8, "then one room of this many participants, all publishing (0: none)")
	heapProfile := fs.String("heap-profile", "", "write the SFU's heap profile with every room up to this file (go tool pprof)")
	child := fs.Bool("sfu-child", false, "internal: run only the SFU, for the parent bench process")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tacklegate bench rooms [options]\n\nMeasures the video rooms' SFU under load: N rooms of 2 participants playing\npre-encoded VP8 360p ≈500 kbit/s + Opus (no encoding in the load generator).\n\nOptions:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *child {
		return benchSFUChild(ctx, stdout, stderr)
	}
	if *rooms < 2 || *parallel < 1 || *churnRooms < 1 {
		fmt.Fprintln(stderr, "tacklegate bench rooms: -rooms must be at least 2, -parallel and -churn-rooms at least 1")
		return exitUsage
	}
	b := &roomBench{out: stdout, errw: stderr, parallel: *parallel, heapProfile: *heapProfile, fill: *fill, big: *big}
	if err := b.run(ctx, *rooms, *steady, *churn, *churnRooms, *pin); err != nil {
		fmt.Fprintln(stderr, "tacklegate bench rooms:", err)
		return exitFail
	}
	return exitOK
}

// benchSFUChild serves the bare SFU on loopback, prints its address and
// runs until stdin closes (the parent is done or gone).
func benchSFUChild(ctx context.Context, stdout, stderr io.Writer) int {
	srv, err := mediatest.NewServer(media.Config{IncludeLoopback: true, MaxRooms: 10000, EmptyRoomGrace: time.Second, ReconnectGrace: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln) //nolint:errcheck // ends with Close
	fmt.Fprintln(stdout, "listening", ln.Addr().String())
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(gone) }() //nolint:errcheck
	select {
	case <-gone:
	case <-ctx.Done():
	}
	hs.Close()
	srv.Close()
	return exitOK
}

type roomBench struct {
	out, errw   io.Writer
	parallel    int
	heapProfile string
	fill        time.Duration
	big         int
	mux         ice.UDPMux
	base        string // http://addr of the SFU
	clip        *mediatest.Media
	pid         int
	seq         int
	mu          sync.Mutex
}

type benchRoom struct{ a, b *mediatest.Client }

func (b *roomBench) logf(format string, args ...any) { fmt.Fprintf(b.errw, format+"\n", args...) }

func (b *roomBench) stats(path string) (mediatest.ServerStats, error) {
	var st mediatest.ServerStats
	req, _ := http.NewRequest(map[bool]string{true: "POST", false: "GET"}[path == "/gc"], b.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (b *roomBench) run(ctx context.Context, n int, steady, churn time.Duration, churnRooms int, pin bool) error {
	var err error
	if b.clip, err = mediatest.Default(); err != nil {
		return err
	}
	// The clients share one socket with a 4 MiB receive buffer: loss the
	// bench reports should be the SFU's, not a starved generator socket's.
	if b.mux, err = mediatest.NewMux(4 << 20); err != nil {
		return err
	}
	defer b.mux.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pinned := false
	cmdArgs := []string{exe, "bench", "rooms", "--sfu-child"}
	if _, err := exec.LookPath("taskset"); err == nil && pin && numCPU() >= 2 {
		cmdArgs = append([]string{"taskset", "-c", "0"}, cmdArgs...)
		pinned = true
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Stderr = b.errw
	stdin, _ := cmd.StdinPipe()
	stdoutPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the SFU: %w", err)
	}
	defer func() { stdin.Close(); cmd.Wait() }() //nolint:errcheck
	line, err := bufio.NewReader(stdoutPipe).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		return fmt.Errorf("the SFU did not start: %q %v", line, err)
	}
	b.base = "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	if pinned {
		if err := exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).Run(); err != nil {
			b.logf("cannot pin the load generator: %v", err)
		}
	}
	where := "not pinned"
	if pinned {
		where = "SFU process pinned to CPU 0, load generator to CPU 1"
	}
	fmt.Fprintf(b.out, "tacklegate bench rooms: %d rooms × 2 participants; each publishes %s\n", n, b.clip.Describe())
	fmt.Fprintf(b.out, "machine: %d CPUs; %s\n", numCPU(), where)

	// Floor: what any SFU spends per forwarded packet, measured here.
	gcm, cm := srtpFloor(srtp.ProtectionProfileAeadAes128Gcm), srtpFloor(srtp.ProtectionProfileAes128CmHmacSha1_80)

	// Warm up (pion's first use sets up shared state), then the baseline.
	warm, _, err := b.openRooms(ctx, 2)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	b.closeRooms(warm)
	base, err := b.settle(ctx)
	if err != nil {
		return err
	}
	b.logf("baseline: %d goroutines, RSS %.1f MiB", base.Goroutines, mib(base.RSS))

	half := n / 2
	first, joins, err := b.openRooms(ctx, half)
	if err != nil {
		return err
	}
	time.Sleep(b.fill)
	atHalf, _ := b.stats("/gc")
	second, joins2, err := b.openRooms(ctx, n-half)
	if err != nil {
		b.closeRooms(first)
		return err
	}
	all := append(first, second...)
	joins = append(joins, joins2...)
	time.Sleep(b.fill)
	atFull, _ := b.stats("/gc")
	if b.heapProfile != "" {
		if err := b.saveHeap(); err != nil {
			b.logf("heap profile: %v", err)
		}
	}
	perPart := float64(atFull.RSS-atHalf.RSS) / float64(atFull.Participants-atHalf.Participants)
	heapPerPart := float64(int64(atFull.HeapInuse)-int64(atHalf.HeapInuse)) / float64(atFull.Participants-atHalf.Participants)

	// Steady state.
	b.logf("measuring %s with %d rooms up", steady, len(all))
	for _, r := range all {
		r.a.Measure(true)
		r.b.Measure(true)
	}
	s0, _ := b.stats("/stats")
	c0 := clientTotals(all)
	u0 := udpRcvbufErrors()
	g0, t0 := mediatest.ProcessCPU(), time.Now()
	select {
	case <-time.After(steady):
	case <-ctx.Done():
		b.closeRooms(all)
		return ctx.Err()
	}
	s1, _ := b.stats("/stats")
	c1 := clientTotals(all)
	u1 := udpRcvbufErrors()
	g1, wall := mediatest.ProcessCPU(), time.Since(t0)
	for _, r := range all {
		if err := r.a.Err(); err != nil {
			b.logf("a client failed: %v", err)
		}
	}
	pkts := s1.PacketsForwarded - s0.PacketsForwarded
	cpu := s1.CPU - s0.CPU
	recv, expected := c1.recv-c0.recv, c1.expected-c0.expected
	loss := 0.0
	if expected > 0 {
		loss = math.Max(0, 1-float64(recv)/float64(expected))
	}
	b.closeRooms(all)

	fj, vj := joinPercentiles(joins)
	fmt.Fprintf(b.out, "join, offer sent → first RTP received (second participant of each room, n=%d): p50 %s, p95 %s; → first video packet: p50 %s, p95 %s\n",
		len(joins), ms(fj[0]), ms(fj[1]), ms(vj[0]), ms(vj[1]))
	fmt.Fprintf(b.out, "steady %s: %d participants, %d subscriptions; forwarded %.0f packets/s, %.1f Mbit/s\n",
		wall.Round(time.Second), atFull.Participants, atFull.Subscriptions, float64(pkts)/wall.Seconds(),
		float64(s1.BytesForwarded-s0.BytesForwarded)*8/wall.Seconds()/1e6)
	fmt.Fprintf(b.out, "SFU CPU: %.0f%% of a core; %.1f µs of CPU per forwarded packet (floor in this run: SRTP decrypt+encrypt+UDP send %.1f µs AES-GCM, %.1f µs AES-CM)\n",
		100*cpu/wall.Seconds(), cpu/float64(pkts)*1e6, gcm.Seconds()*1e6, cm.Seconds()*1e6)
	fmt.Fprintf(b.out, "loss %.3f%% (%d of %d packets missing at subscribers); NACKs from subscribers %d, to publishers %d; PLIs from subscribers %d; freezes (video >%s without a frame) %d on %d video tracks\n",
		100*loss, expected-recv, expected, s1.NACKsReceived-s0.NACKsReceived, s1.NACKsSent-s0.NACKsSent,
		s1.PLIsReceived-s0.PLIsReceived, mediatest.FreezeAfter, c1.freezes-c0.freezes, c1.videoTracks)
	fmt.Fprintf(b.out, "memory: RSS after GC %.1f MiB with %d participants, %.1f MiB with %d → %.2f MiB per participant (Go heap %.2f MiB)\n",
		mib(atHalf.RSS), atHalf.Participants, mib(atFull.RSS), atFull.Participants, perPart/(1<<20), heapPerPart/(1<<20))
	fmt.Fprintf(b.out, "machine during the window: load average %s; UDP datagrams dropped for full receive buffers (whole machine, /proc/net/snmp RcvbufErrors) %d\n",
		loadAvg(), u1-u0)
	genLoad := (g1 - g0).Seconds() / wall.Seconds()
	fmt.Fprintf(b.out, "load generator CPU: %.0f%% of a core", 100*genLoad)
	if pinned && genLoad > 0.9 {
		fmt.Fprint(b.out, " (SATURATED: the generator's own core limits what it sends and reads; figures understate loss-free capacity)")
	}
	fmt.Fprintln(b.out)

	if b.big >= 2 {
		if err := b.bigRoom(ctx, b.big, 10*time.Second); err != nil {
			return fmt.Errorf("room of %d: %w", b.big, err)
		}
	}

	// Churn: rooms come and go; afterwards everything must be released.
	if churn > 0 {
		b.logf("churn for %s: %d rooms joined and left per cycle", churn, churnRooms)
		end := time.Now().Add(churn)
		cycles := 0
		var cj []joinTime
		for time.Now().Before(end) && ctx.Err() == nil {
			rs, js, err := b.openRooms(ctx, churnRooms)
			if err != nil {
				return fmt.Errorf("churn: %w", err)
			}
			cj = append(cj, js...)
			b.closeRooms(rs)
			cycles++
		}
		after, err := b.settle(ctx)
		if err != nil {
			return err
		}
		cf, _ := joinPercentiles(cj)
		fmt.Fprintf(b.out, "churn %s: %d cycles × %d rooms joined and left (join p50 %s, p95 %s); after it: %d goroutines (baseline %d), RSS %.1f MiB (baseline %.1f), heap %.1f MiB (baseline %.1f), %d rooms open\n",
			churn, cycles, churnRooms, ms(cf[0]), ms(cf[1]), after.Goroutines, base.Goroutines, mib(after.RSS), mib(base.RSS),
			float64(after.HeapInuse)/(1<<20), float64(base.HeapInuse)/(1<<20), after.Rooms)
	}
	return nil
}

func (b *roomBench) saveHeap() error {
	resp, err := http.Get(b.base + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(b.heapProfile)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// bigRoom joins k publishing participants into one room one after the
// other, each one's join time measured to its first packet, then measures
// forwarding in it for d.
func (b *roomBench) bigRoom(ctx context.Context, k int, d time.Duration) error {
	if _, err := b.settle(ctx); err != nil {
		return err
	}
	ws := "ws" + strings.TrimPrefix(b.base, "http") + "/ws?room=big" + strconv.Itoa(k) + "&id="
	var cs []*mediatest.Client
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	var joins []joinTime
	for i := range k {
		c, err := mediatest.Dial(ctx, ws+"p"+strconv.Itoa(i), mediatest.Options{Media: b.clip, Offset: mrand.IntN(len(b.clip.Video)), Mux: b.mux})
		if err != nil {
			return err
		}
		cs = append(cs, c)
		if i == 0 {
			continue
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if f, v := c.JoinTime(); v > 0 {
				joins = append(joins, joinTime{f, v})
				break
			}
			if c.Err() != nil || time.Now().After(deadline) {
				return fmt.Errorf("participant %d got no video: %v", i, c.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	rs := make([]benchRoom, 0, k)
	for _, c := range cs {
		rs = append(rs, benchRoom{c, c}) // clientTotals counts each twice; halved below
	}
	time.Sleep(3 * time.Second)
	for _, c := range cs {
		c.Measure(true)
	}
	s0, _ := b.stats("/stats")
	c0 := clientTotals(rs)
	u0 := udpRcvbufErrors()
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return ctx.Err()
	}
	s1, _ := b.stats("/stats")
	c1 := clientTotals(rs)
	u1 := udpRcvbufErrors()
	wall := time.Since(t0)
	pkts := s1.PacketsForwarded - s0.PacketsForwarded
	recv, expected := (c1.recv-c0.recv)/2, (c1.expected-c0.expected)/2
	loss := 0.0
	if expected > 0 {
		loss = math.Max(0, 1-float64(recv)/float64(expected))
	}
	fj, vj := joinPercentiles(joins)
	fmt.Fprintf(b.out, "one room of %d, everyone publishing: join → first RTP p50 %s, p95 %s (→ first video p50 %s, p95 %s; n=%d); %d subscriptions, forwarded %.0f packets/s; SFU %.1f µs CPU per forwarded packet; loss %.3f%%, NACKs from subscribers %d, to publishers %d; freezes %d; load average %s, UDP receive-buffer drops %d\n",
		k, ms(fj[0]), ms(fj[1]), ms(vj[0]), ms(vj[1]), len(joins), s1.Subscriptions, float64(pkts)/wall.Seconds(),
		(s1.CPU-s0.CPU)/float64(pkts)*1e6, 100*loss, s1.NACKsReceived-s0.NACKsReceived, s1.NACKsSent-s0.NACKsSent,
		(c1.freezes-c0.freezes)/2, loadAvg(), u1-u0)
	return nil
}

// settle waits until the SFU has no rooms left, then collects garbage.
func (b *roomBench) settle(ctx context.Context) (mediatest.ServerStats, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := b.stats("/stats")
		if err != nil {
			return st, err
		}
		if st.Rooms == 0 && st.Participants == 0 {
			break
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%d rooms, %d participants still open 30 s after everyone left", st.Rooms, st.Participants)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(time.Second) // goroutines that are on their way out
	return b.stats("/gc")
}

type joinTime struct{ first, video time.Duration }

// openRooms opens n rooms, parallel at a time, and waits until both
// participants of each receive video. Join time is the second
// participant's: the first one's media starts only when someone comes.
func (b *roomBench) openRooms(ctx context.Context, n int) ([]benchRoom, []joinTime, error) {
	ws := "ws" + strings.TrimPrefix(b.base, "http") + "/ws"
	var (
		mu    sync.Mutex
		out   []benchRoom
		joins []joinTime
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, b.parallel)
	)
	for range n {
		b.mu.Lock()
		b.seq++
		id := fmt.Sprintf("b%06d", b.seq)
		b.mu.Unlock()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, j, err := b.openRoom(ctx, ws, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("room %s: %w", id, err)
				}
				return
			}
			out = append(out, r)
			joins = append(joins, j)
		}()
	}
	wg.Wait()
	if first != nil {
		b.closeRooms(out)
		return nil, nil, first
	}
	return out, joins, nil
}

func (b *roomBench) openRoom(ctx context.Context, ws, id string) (benchRoom, joinTime, error) {
	frames := len(b.clip.Video)
	a, err := mediatest.Dial(ctx, ws+"?room="+id+"&id=a", mediatest.Options{Media: b.clip, Offset: mrand.IntN(frames), Mux: b.mux})
	if err != nil {
		return benchRoom{}, joinTime{}, err
	}
	c, err := mediatest.Dial(ctx, ws+"?room="+id+"&id=b", mediatest.Options{Media: b.clip, Offset: mrand.IntN(frames), Mux: b.mux})
	if err != nil {
		a.Close()
		return benchRoom{}, joinTime{}, err
	}
	r := benchRoom{a, c}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, av := a.JoinTime()
		f, v := c.JoinTime()
		if av > 0 && v > 0 {
			return r, joinTime{f, v}, nil
		}
		if err := errors.Join(a.Err(), c.Err()); err != nil || time.Now().After(deadline) {
			b.closeRooms([]benchRoom{r})
			if err == nil {
				err = errors.New("no video within 20 s")
			}
			return benchRoom{}, joinTime{}, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *roomBench) closeRooms(rs []benchRoom) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(2)
		go func() { defer wg.Done(); r.a.Close() }()
		go func() { defer wg.Done(); r.b.Close() }()
	}
	wg.Wait()
}

type totals struct {
	recv, expected, freezes int64
	videoTracks             int
}

func clientTotals(rs []benchRoom) totals {
	var t totals
	for _, r := range rs {
		for _, c := range []*mediatest.Client{r.a, r.b} {
			for _, tr := range c.Tracks() {
				t.recv += tr.Received
				t.expected += tr.Highest
				t.freezes += tr.Freezes
				if tr.Kind == "video" {
					t.videoTracks++
				}
			}
		}
	}
	return t
}

// joinPercentiles returns p50 and p95 of the first-RTP and first-video
// join times.
func joinPercentiles(js []joinTime) (first, video [2]time.Duration) {
	if len(js) == 0 {
		return
	}
	f := make([]time.Duration, len(js))
	v := make([]time.Duration, len(js))
	for i, j := range js {
		f[i], v[i] = j.first, j.video
	}
	pct := func(d []time.Duration) [2]time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		at := func(p float64) time.Duration { return d[int(math.Ceil(p*float64(len(d))))-1] }
		return [2]time.Duration{at(0.50), at(0.95)}
	}
	return pct(f), pct(v)
}

// srtpFloor is the CPU per packet of SRTP decrypt + encrypt of a
// 1200-byte packet and one UDP send on loopback (the receive that drains
// it runs too): what any SFU spends per forwarded packet.
func srtpFloor(profile srtp.ProtectionProfile) time.Duration {
	keyLen, _ := profile.KeyLen()
	saltLen, _ := profile.SaltLen()
	key, salt := make([]byte, keyLen), make([]byte, saltLen)
	rand.Read(key)  //nolint:errcheck
	rand.Read(salt) //nolint:errcheck
	enc, err1 := srtp.CreateContext(key, salt, profile)
	dec, err2 := srtp.CreateContext(key, salt, profile)
	rx, err3 := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	tx, err4 := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return 0
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
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 1188)}
	raw, _ := pkt.Marshal()
	ct, pt := make([]byte, 0, 1500), make([]byte, 0, 1500)
	const n = 20000
	cpu0 := mediatest.ProcessCPU()
	for i := range n {
		raw[2], raw[3] = byte(i>>8), byte(i)
		c, err := enc.EncryptRTP(ct[:0], raw, nil)
		if err != nil {
			break
		}
		if _, err := dec.DecryptRTP(pt[:0], c, nil); err != nil {
			break
		}
		tx.WriteToUDP(c, to) //nolint:errcheck
	}
	per := (mediatest.ProcessCPU() - cpu0) / n
	tx.Close()
	rx.Close()
	<-done
	return per
}

func numCPU() int {
	b, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, _ := strconv.ParseFloat(f[0], 64)
			p, _ := strconv.ParseFloat(f[1], 64)
			if p > 0 && q > 0 {
				return int(math.Ceil(q / p))
			}
		}
	}
	return runtime.NumCPU()
}

// udpRcvbufErrors is the machine's count of UDP datagrams dropped because
// a socket's receive buffer was full: loss that happens when a process is
// not scheduled in time, not in the SFU's logic.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)
		if head == nil {
			head = f
			continue
		}
		for i, name := range head {
			if name == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 0, 64) + " ms" }
