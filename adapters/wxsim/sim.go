package wxsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Path prefixes under which the three hosts are served on one listener.
const (
	PrefixWeChat = "/wechat" // api.weixin.qq.com
	PrefixWeCom  = "/wecom"  // qyapi.weixin.qq.com
	PrefixPay    = "/pay"    // api.mch.weixin.qq.com (mounted with MountPay)
	PrefixSim    = "/sim"    // control page and /sim/api
	PrefixOpen   = "/open"   // open.weixin.qq.com (WeCom's web OAuth page)
)

// Simulator plays api.weixin.qq.com (mini-program) and qyapi.weixin.qq.com
// (WeCom self-built app) for one mini-program and one corp, plus the people
// using them: customers in WeChat and staff in WeCom.
type Simulator struct {
	cfg    Config // immutable after New; runtime-changeable settings live in mu-guarded fields
	log    *slog.Logger
	clock  *Clock
	faults *Faults
	mux    *http.ServeMux
	client *http.Client // for callbacks to the gateway

	mu          sync.Mutex
	tokens      *tokenStore
	customers   map[string]*customer
	custOrder   []string
	staff       map[string]*staffMember // key: lower-cased userid
	staffOrder  []string
	codes       map[string]*oneTimeCode
	media       map[string]*mediaObject
	quotas      map[string]*quotaCounter
	limits      map[string]Quota
	pushes      []*Push
	appSends    []AppSend
	kf          *kfStore
	nextID      int64
	pushURL     string
	pushFormat  string
	pushMode    string
	wecomURL    string
	publicURL   string
	payHandler  http.Handler
	paymentsSrc func() any
	sms         []SMS // text messages the customers' phones received

	server   *http.Server
	listener net.Listener
	serveErr chan error
}

// New builds a simulator from cfg (zero fields take the documented defaults).
func New(cfg Config, logger *slog.Logger) (*Simulator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		cfg:        cfg,
		log:        logger.With("component", "wxsim"),
		clock:      NewClock(cfg.Now),
		faults:     newFaults(cfg.Seed),
		mux:        http.NewServeMux(),
		client:     &http.Client{Timeout: cfg.Push.Timeout},
		tokens:     newTokenStore(),
		customers:  map[string]*customer{},
		staff:      map[string]*staffMember{},
		codes:      map[string]*oneTimeCode{},
		media:      map[string]*mediaObject{},
		quotas:     map[string]*quotaCounter{},
		limits:     maps.Clone(cfg.Quotas),
		pushURL:    cfg.PushURL,
		pushFormat: cfg.PushFormat,
		pushMode:   cfg.PushMode,
		wecomURL:   cfg.WeComCallbackURL,
		kf:         newKFStore(cfg.KFAccounts, cfg.StaffUserIDs),
		publicURL:  strings.TrimSuffix(cfg.PublicURL, "/"),
	}
	// MsgIds are 64-bit and must not repeat across simulator restarts, or a
	// gateway that keeps its database would drop new messages as duplicates.
	s.nextID = s.clock.Now().Unix() * 1_000_000
	for _, c := range cfg.Customers {
		s.addCustomerLocked(c)
	}
	for _, id := range cfg.StaffUserIDs {
		key := strings.ToLower(id)
		if _, dup := s.staff[key]; dup {
			return nil, fmt.Errorf("wxsim: staff userid %q listed twice (userids are case-insensitive)", id)
		}
		s.staff[key] = &staffMember{userID: id}
		s.staffOrder = append(s.staffOrder, key)
	}
	s.routes()
	return s, nil
}

// Start builds a simulator and serves it on 127.0.0.1 at a free port.
func Start(cfg Config, logger *slog.Logger) (*Simulator, error) {
	s, err := New(cfg, logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("wxsim: listen: %w", err)
	}
	s.listener = ln
	s.mu.Lock()
	if s.publicURL == "" {
		s.publicURL = "http://" + ln.Addr().String()
	}
	s.mu.Unlock()
	s.server = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.server.Serve(ln) }()
	s.log.Info("simulator listening", "url", s.URL())
	return s, nil
}

// URL is the base URL of a started simulator ("" if built with New), or the
// PublicURL it was configured with.
func (s *Simulator) URL() string {
	if s.listener != nil {
		return "http://" + s.listener.Addr().String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publicURL
}

// WeChatBase is the base URL that replaces https://api.weixin.qq.com.
func (s *Simulator) WeChatBase() string { return s.URL() + PrefixWeChat }

// WeComBase is the base URL that replaces https://qyapi.weixin.qq.com.
func (s *Simulator) WeComBase() string { return s.URL() + PrefixWeCom }

// OpenBase is the base URL that replaces https://open.weixin.qq.com (WeCom's
// web OAuth page).
func (s *Simulator) OpenBase() string { return s.URL() + PrefixOpen }

// PayBase is the base URL that replaces https://api.mch.weixin.qq.com.
func (s *Simulator) PayBase() string { return s.URL() + PrefixPay }

// Close stops a simulator started with Start.
func (s *Simulator) Close() error {
	s.client.CloseIdleConnections()
	if s.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	if err != nil {
		_ = s.server.Close()
	}
	if serr := <-s.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Handler serves every host under its prefix, the control API and the page.
func (s *Simulator) Handler() http.Handler { return s.mux }

// Clock returns the clock that drives every TTL. A gateway under test should
// read the same clock, or pushes stamped after an Advance look stale to it.
func (s *Simulator) Clock() *Clock { return s.clock }

// Advance moves the simulator clock forward.
func (s *Simulator) Advance(d time.Duration) { s.clock.Advance(d) }

// Faults returns the fault table.
func (s *Simulator) Faults() *Faults { return s.faults }

// FaultFor decides whether an injected fault fires for this call of
// endpoint, consuming one of its Times if so. The Pay sub-simulator calls it
// with its own paths ("/pay/v3/…") and renders the fault in Pay's style.
func (s *Simulator) FaultFor(endpoint string) (Fault, bool) { return s.faults.fire(endpoint) }

// MountPay serves h under /pay (the prefix is stripped, so h sees /v3/…).
func (s *Simulator) MountPay(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.payHandler = h
}

// SetPaymentsSource feeds the page's 支付记录 panel and GET /sim/api/payments.
func (s *Simulator) SetPaymentsSource(f func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paymentsSrc = f
}

// SetQuota changes the call budget of endpoint at run time (zero: unlimited).
func (s *Simulator) SetQuota(endpoint string, q Quota) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[endpoint] = q
}

// Logger returns the simulator's logger, for sub-simulators.
func (s *Simulator) Logger() *slog.Logger { return s.log }

func (s *Simulator) servePay(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.payHandler
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "wxsim: no Pay simulator mounted", http.StatusNotFound)
		return
	}
	http.StripPrefix(PrefixPay, h).ServeHTTP(w, r)
}

// randomString returns n characters from alphabet using crypto/rand: tokens,
// codes and media ids must not be guessable from one another, like the real ones.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	idChars  = alnum + "_-"
	digitSet = "0123456789"
)

func requestID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newID returns the next 64-bit message id. Caller holds s.mu.
func (s *Simulator) newIDLocked() int64 {
	s.nextID++
	return s.nextID
}
