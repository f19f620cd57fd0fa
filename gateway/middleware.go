package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	headerRequestID = "X-Request-Id"
	localsRequestID = "request_id"
	localsLogger    = "logger"
	localsError     = "error"
)

// requestID reads a sane X-Request-Id from the caller (a load balancer or
// WeChat's own retry) or makes one, echoes it, and scopes the request's logger
// with it.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(headerRequestID)
	if !validRequestID(id) {
		var b [12]byte
		rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
		id = hex.EncodeToString(b[:])
	} else {
		id = string([]byte(id)) // fiber reuses the header buffer
	}
	c.Set(headerRequestID, id)
	c.Locals(localsRequestID, id)
	c.Locals(localsLogger, s.logger.With("request_id", id))
	return c.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

// Logger returns the request-scoped logger (with request_id).
func Logger(c *fiber.Ctx) *slog.Logger {
	if l, ok := c.Locals(localsLogger).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// observe is the outermost middleware: it answers errors through writeError,
// then writes the one access-log line and the metrics for the request.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		writeError(c, err)
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := routeLabel(c, err)
	s.metrics.requests.WithLabelValues(route, c.Method(), strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route, c.Method()).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	if route == "/healthz" || route == "/readyz" || route == "/metrics" {
		level = slog.LevelDebug // probes every few seconds would drown the log
	}
	attrs := []slog.Attr{
		slog.String("method", c.Method()), slog.String("path", c.Path()), slog.String("route", route),
		slog.Int("status", status), slog.Duration("duration", elapsed), slog.String("ip", c.IP()),
	}
	if logged, ok := c.Locals(localsError).(error); ok {
		attrs = append(attrs, logAttrsForError(logged)...)
		if status >= 500 {
			level = slog.LevelError
		} else if level < slog.LevelInfo || status == fiber.StatusUnauthorized {
			level = slog.LevelWarn // refused callbacks and probes deserve a look
		}
	}
	Logger(c).LogAttrs(c.UserContext(), level, "request", attrs...)
	return nil
}

// routeLabel names the matched route pattern (not the raw path) so metrics
// keep a bounded number of series; requests that matched no route share one.
// fiber reports those with its own 404/405 error, which handlers never return
// (they return *rental.Error).
func routeLabel(c *fiber.Ctx, err error) string {
	var fe *fiber.Error
	if errors.As(err, &fe) && (fe.Code == fiber.StatusNotFound || fe.Code == fiber.StatusMethodNotAllowed) {
		return "unmatched"
	}
	return c.Route().Path
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tacklegate", Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tacklegate", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}
