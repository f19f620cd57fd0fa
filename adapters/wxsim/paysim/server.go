package paysim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// DefaultPlatformSerial is the public-key id the simulator signs with unless
// configured otherwise: the sample id from the official docs.
const DefaultPlatformSerial = "PUB_KEY_ID_0000000000000024101100397200000006"

// Config.Fault is asked about API requests by their path as served, without
// the parent's mount prefix ("/v3/pay/transactions/jsapi",
// "/v3/pay/transactions/out-trade-no/T1/close"), and about notification
// attempts as EndpointNotify. The parent simulator can prefix "/pay" and look
// the path up in its own fault table.
const (
	EndpointPrepay = "/v3/pay/transactions/jsapi"
	EndpointRefund = "/v3/refund/domestic/refunds"
	EndpointNotify = "push:pay" // each notification delivery attempt
)

// Fault is an injected failure for one request or notification attempt.
type Fault struct {
	// Latency delays the answer (or the notification attempt).
	Latency time.Duration
	// HTTPStatus ≥ 400 answers the API request with that status and Pay's
	// error body (5xx → SYSTEM_ERROR, 429 → FREQUENCY_LIMITED, …), signed,
	// without processing it. Ignored for notifications.
	HTTPStatus int
	// Drop on an API request processes it and then loses the answer: the
	// handler panics with http.ErrAbortHandler, which net/http turns into a
	// cut connection (a recovering middleware above must re-panic it). The
	// merchant must retry idempotently. Drop on a notification loses that
	// attempt; the retry schedule continues.
	Drop bool
}

// Config configures a Server. MchID, AppID, MerchantPublicKey, MerchantSerial
// and APIv3Key are required.
type Config struct {
	MchID             string
	AppID             string         // the mini-program bound to MchID
	MerchantPublicKey *rsa.PublicKey // verifies request signatures and paySign
	MerchantSerial    string         // the serial_no requests must carry
	APIv3Key          string         // 32 bytes; encrypts notification resources

	// PlatformKey signs answers and notifications; generated (RSA 2048) when
	// nil. PlatformSerial is its Wechatpay-Serial, DefaultPlatformSerial when
	// empty.
	PlatformKey    *rsa.PrivateKey
	PlatformSerial string

	// Now is the simulator clock for business time: prepay TTL, time_expire,
	// refund completion, notification retry schedule, success_time. Defaults
	// to time.Now. Tests advance it.
	Now func() time.Time
	// WireNow is the clock of the signatures on the wire: the
	// Wechatpay-Timestamp it sends and the ±5 min window it allows merchant
	// timestamps. Defaults to Now. Set it to time.Now when Now is a test clock
	// that jumps ahead while the merchant's clock does not.
	WireNow func() time.Time

	// RetryScale multiplies WeChat Pay's notification retry schedule
	// (15s, 15s, 30s, 3m, …, 6h) and the refund delay; 0.001 turns 15 s into
	// 15 ms. Zero means 1.
	RetryScale float64
	// RefundDelay is how long (simulator clock, before RetryScale) a refund
	// stays PROCESSING; default 3 s.
	RefundDelay time.Duration
	// NotifyTimeout is how long a notify_url has to answer; default 5 s, as
	// WeChat Pay documents.
	NotifyTimeout time.Duration
	// PollInterval is how often (real time) due notifications and refunds are
	// looked for; default 20 ms. Work caused by an API call or a control
	// action starts immediately regardless.
	PollInterval time.Duration
	// MinCloseAge is the youngest order that may be closed. The v2 API had a
	// 5-minute rule; whether v3 keeps it is [unconfirmed], so the default is 0.
	MinCloseAge time.Duration

	// SignProbeRate is the probability that an answer is signed with a
	// WECHATPAY/SIGNTEST/ probe signature instead of a real one, and that a
	// notification delivery is preceded by a probe request. Default 0.
	SignProbeRate float64
	// DuplicateNotifyRate is the probability that a delivered notification
	// is delivered once more, as WeChat Pay may do. Default 0.
	DuplicateNotifyRate float64

	// Fault, when set, is asked before each API request (by path) and each
	// notification attempt (EndpointNotify).
	Fault func(endpoint string) (Fault, bool)
	// HTTPClient delivers notifications; default: a plain client. Each
	// attempt is bounded by NotifyTimeout regardless.
	HTTPClient *http.Client
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Seed makes ids, nonces, probes and duplicates reproducible; 0 picks a
	// random seed.
	Seed int64
}

// Server is the simulated WeChat Pay server. It is safe for concurrent use.
// Call Close to stop its background work.
type Server struct {
	cfg         Config
	platformKey *rsa.PrivateKey
	log         *slog.Logger
	hc          *http.Client
	handler     http.Handler

	rngMu sync.Mutex
	rng   *mrand.Rand

	mu       sync.Mutex
	orders   map[string]*order  // by out_trade_no
	byTxn    map[string]*order  // by transaction_id
	refunds  map[string]*refund // by out_refund_no
	ordered  []*order           // creation order, for Orders()
	nonces   map[string]time.Time
	events   map[string]*notifyJob // by event id
	jobs     []*notifyJob          // not yet finished
	attempts []NotifyAttempt
	balance  int64               // available refund balance in fen; <0: unlimited
	bills    map[string]billFile // by download token

	wake      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates cfg, generates the platform key if needed and starts the
// background worker.
func New(cfg Config) (*Server, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.MchID == "" {
		bad("MchID is empty")
	}
	if cfg.AppID == "" {
		bad("AppID is empty")
	}
	if cfg.MerchantPublicKey == nil {
		bad("MerchantPublicKey is nil")
	}
	if cfg.MerchantSerial == "" {
		bad("MerchantSerial is empty")
	}
	if len(cfg.APIv3Key) != 32 {
		bad("APIv3Key must be 32 bytes, got %d", len(cfg.APIv3Key))
	}
	for name, p := range map[string]float64{"SignProbeRate": cfg.SignProbeRate, "DuplicateNotifyRate": cfg.DuplicateNotifyRate} {
		if p < 0 || p > 1 {
			bad("%s %v is not a probability", name, p)
		}
	}
	if cfg.RetryScale < 0 {
		bad("RetryScale %v is negative", cfg.RetryScale)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("paysim: invalid config: %w", errors.Join(errs...))
	}
	if cfg.PlatformKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("paysim: generate platform key: %w", err)
		}
		cfg.PlatformKey = k
	}
	if cfg.PlatformSerial == "" {
		cfg.PlatformSerial = DefaultPlatformSerial
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WireNow == nil {
		cfg.WireNow = cfg.Now
	}
	if cfg.RetryScale == 0 {
		cfg.RetryScale = 1
	}
	if cfg.RefundDelay == 0 {
		cfg.RefundDelay = 3 * time.Second
	}
	if cfg.NotifyTimeout == 0 {
		cfg.NotifyTimeout = 5 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = int64(binary.LittleEndian.Uint64(b[:]) | 1)
	}
	s := &Server{
		cfg:         cfg,
		platformKey: cfg.PlatformKey,
		log:         cfg.Logger,
		hc:          cfg.HTTPClient,
		rng:         mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		orders:      map[string]*order{},
		byTxn:       map[string]*order{},
		refunds:     map[string]*refund{},
		nonces:      map[string]time.Time{},
		events:      map[string]*notifyJob{},
		balance:     -1,
		wake:        make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "paysim")
	if s.hc == nil {
		s.hc = &http.Client{}
	}
	s.handler = s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Handler serves /v3/… (the API) and /control/… (the outside world).
func (s *Server) Handler() http.Handler { return s.handler }

// PlatformPublicKey is the key merchants verify answers and notifications with.
func (s *Server) PlatformPublicKey() *rsa.PublicKey { return &s.platformKey.PublicKey }

// PlatformPublicKeyPEM is PlatformPublicKey as the "BEGIN PUBLIC KEY" file the
// merchant console hands out in public-key mode.
func (s *Server) PlatformPublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&s.platformKey.PublicKey)
	if err != nil { // cannot happen for an RSA key
		panic(fmt.Sprintf("paysim: marshal platform key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// PlatformSerial is the Wechatpay-Serial the simulator signs with.
func (s *Server) PlatformSerial() string { return s.cfg.PlatformSerial }

// Close stops the background worker and waits for notification deliveries in
// flight (their requests are cancelled). It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

// now and wireNow read the two clocks.
func (s *Server) now() time.Time     { return s.cfg.Now() }
func (s *Server) wireNow() time.Time { return s.cfg.WireNow() }

// scaled applies RetryScale to a simulator-clock duration.
func (s *Server) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.RetryScale)
}

// fault asks the hook about one endpoint.
func (s *Server) fault(endpoint string) (Fault, bool) {
	if s.cfg.Fault == nil {
		return Fault{}, false
	}
	return s.cfg.Fault(endpoint)
}

// chance draws against a probability.
func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

// randString returns n characters drawn from alphabet.
func (s *Server) randString(n int, alphabet string) string {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	digits   = "0123456789"
	hexUpper = "0123456789ABCDEF"
	hexLower = "0123456789abcdef"
	alnum    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// uuid returns a random RFC 4122-shaped id, the shape of real notification ids.
func (s *Server) uuid() string {
	h := s.randString(32, hexLower)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// formatTime writes t as WeChat Pay does: RFC 3339 in China Standard Time
// (+08:00). A fixed zone avoids depending on the host's tzdata.
func formatTime(t time.Time) string {
	return t.In(time.FixedZone("CST", 8*60*60)).Format(time.RFC3339)
}
