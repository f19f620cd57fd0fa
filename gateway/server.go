// Package gateway is tacklegate's HTTP edge: routes, authentication, the
// callbacks from WeChat, WeCom and WeChat Pay, the message bridge, the
// assistant and the H5 pages. Handlers return errors; errors.go alone turns
// them into responses.
package gateway

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness probe (the database, Redis…): nil means healthy.
type Check func(ctx context.Context) error

// Options are what the gateway is built from. cmd/tacklegate fills them in.
type Options struct {
	Logger       *slog.Logger
	BodyLimit    int
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Checks run on /readyz, by name.
	Checks map[string]Check
	// Channels says which upstream channels are on, for /readyz's details.
	Channels map[string]bool
	// Registry receives the gateway's metrics; /metrics serves it.
	Registry *prometheus.Registry
	Version  string
	// Callbacks, when set, mounts /callbacks/wechat and /callbacks/wecom.
	Callbacks *Callbacks
	// Identity, when set, mounts the auth, member and owner routes.
	Identity *Identity
	// Rooms, when set (with Identity), mounts /api/v1/rooms and /ws.
	Rooms *Rooms
	// Rental, when set (with Identity), mounts the catalog, order, payment,
	// inspection and evidence routes.
	Rental *Rental
}

// Server is the gateway.
type Server struct {
	app     *fiber.App
	logger  *slog.Logger
	opts    Options
	metrics *metrics
	auth    *authority
	roles   routeRoles // every /api/v1 route and the roles it admits
	live    *Live      // the live channel on /ws?access= (MountLive)
}

// New builds the gateway and its routes.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{logger: opts.Logger.With("component", "gateway"), opts: opts, roles: routeRoles{}}
	s.metrics = newMetrics(opts.Registry)
	s.app = fiber.New(fiber.Config{
		AppName:               "tacklegate",
		DisableStartupMessage: true,
		BodyLimit:             opts.BodyLimit,
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.WriteTimeout,
		IdleTimeout:           2 * time.Minute,
		// Errors from the handler chain are answered by observe; this catches
		// what fasthttp rejects before any handler runs (body too large,
		// malformed request line, read timeout).
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			writeError(c, err)
			s.logger.Warn("request rejected before routing", "error", err.Error(), "ip", c.IP())
			return nil
		},
	})
	s.app.Use(s.requestID, s.observe, recoverPanics)
	s.routes()
	return s
}

func (s *Server) routes() {
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})))
	s.mountPages()
	if s.opts.Callbacks != nil {
		s.mountCallbacks(s.opts.Callbacks)
	}
	if s.opts.Identity != nil {
		s.mountIdentity(s.opts.Identity)
		if s.opts.Rooms != nil {
			s.mountRooms(s.opts.Rooms)
		}
	}
	if s.opts.Rental != nil && s.opts.Identity != nil {
		s.mountRental(s.opts.Rental)
	}
}

// App exposes the fiber app so later packages can mount routes and tests can
// call app.Test.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections and waits for in-flight requests until
// ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

// RegisterRuntimeMetrics adds the Go runtime and process collectors.
func RegisterRuntimeMetrics(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
