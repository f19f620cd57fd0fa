package mediatest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/tacklegate/tacklegate/media"
)

// Server is a bare SFU for load tests: media.Manager behind /ws?room=&id=
// (no tokens: it listens on loopback only), with GET /stats, POST /gc and GET /debug/pprof/heap.
// The signaling relay is the gateway's (gateway/rooms.go) without the
// room token.
type Server struct {
	M        *media.Manager
	upgrader websocket.Upgrader
}

// NewServer starts a Manager with cfg.
func NewServer(cfg media.Config) (*Server, error) {
	m, err := media.NewManager(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{M: m, upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}}, nil
}

// ServerStats is the SFU process's state.
type ServerStats struct {
	media.Stats
	Goroutines int
	RSS        int64   // bytes resident
	HeapInuse  uint64  // bytes
	CPU        float64 // seconds of user + system time since the process started
}

// ProcessCPU is this process's user + system CPU time.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RSS is this process's resident memory, from /proc/self/statm.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func (s *Server) stats() ServerStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ServerStats{Stats: s.M.Stats(), Goroutines: runtime.NumGoroutine(), RSS: RSS(), HeapInuse: ms.HeapInuse,
		CPU: ProcessCPU().Seconds()}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.stats()) //nolint:errcheck
	case "/gc":
		runtime.GC()
		debug.FreeOSMemory()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.stats()) //nolint:errcheck
	case "/ws":
		s.serveWS(w, r)
	case "/debug/pprof/heap":
		pprof.Handler("heap").ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	room, id := r.URL.Query().Get("room"), r.URL.Query().Get("id")
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	closed := false
	defer func() { mu.Lock(); closed = true; mu.Unlock() }()
	send := func(sig media.Signal) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return websocket.ErrCloseSent
		}
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		return conn.WriteJSON(sig)
	}
	sess, err := s.M.Join(ctx, room, media.ParticipantInfo{ID: id, Name: id, Role: "bench"}, send)
	if err != nil {
		send(media.Signal{Type: media.TypeError, Error: &media.SignalError{Code: media.ErrorCode(err), Message: err.Error()}}) //nolint:errcheck
		return
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	defer func() { close(stop); <-watched }()
	go func() {
		defer close(watched)
		select {
		case <-sess.Done():
			conn.Close()
		case <-stop:
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			sess.Close()
			return
		}
		var sig media.Signal
		if json.Unmarshal(data, &sig) != nil {
			continue
		}
		sess.Handle(ctx, sig) //nolint:errcheck // reported to the client
	}
}

// Close closes the Manager.
func (s *Server) Close() { s.M.Close() }
