package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/redis"
	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechat/apibase"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wechat/token"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

func cmdServe(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "serve", "serve [--config FILE] [--print-config]",
		"Runs the gateway. Settings come from TACKLEGATE_* variables, on top of the YAML file given with --config.\n"+
			"A channel (mini-program, WeCom, WeChat Pay) whose settings are absent is switched off with a warning.")
	cfgPath := fs.String("config", "", "YAML file with settings (keys: http_addr, database_url, …)")
	printCfg := fs.Bool("print-config", false, "print the effective configuration, secrets redacted, and exit")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	cfg, ok := loadConfig(e, *cfgPath, e.getenv)
	if !ok {
		return exitUsage
	}
	if *printCfg {
		fmt.Fprintln(e.stdout, strings.Join(cfg.Redacted(), "\n"))
		return exitOK
	}
	return serve(ctx, e, cfg, serveHooks{})
}

// serveHooks let demo add to what serve runs.
type serveHooks struct {
	// sms, when set, also receives every SMS (the demo shows codes on the
	// simulator's page).
	sms sms.Sender
	// now, when set, is the clock callback timestamps are judged by: the
	// simulator's in demo, so that moving simulated time keeps working.
	now func() time.Time
	// ln, when set, is the gateway's listener, opened by the caller.
	ln net.Listener
	// started is called once the gateway answers, with its base URL.
	started func(baseURL string, db *store.DB)
	// sim, when set, lets the customer page play the customer's phone in
	// the simulator (demo only).
	sim *gateway.DemoSim
}

// serve runs the gateway until ctx is cancelled (SIGINT/SIGTERM), then stops
// accepting, drains in-flight requests within the shutdown timeout and closes
// the database.
func serve(ctx context.Context, e env, cfg config.Config, hooks serveHooks) int {
	logger := newLogger(cfg, e.stderr)
	version, revision, _ := buildInfo()
	pay, err := newPayClient(cfg, hooks.now)
	if err != nil {
		fmt.Fprintln(e.stderr, "tacklegate: invalid configuration:\n  "+rental.ErrorMessage(err))
		return exitUsage
	}

	// Listen before touching any file, so a taken port is reported before
	// anything is written.
	ln := hooks.ln
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return listenFailed(e, cfg.HTTPAddr, err)
		}
	}
	defer ln.Close()

	app, err := openApp(ctx, cfg, logger, true)
	if err != nil {
		return fail(e, "cannot start", err)
	}
	defer app.close()

	callbacks, err := buildCallbacks(cfg, app.db)
	if err != nil {
		return fail(e, "cannot start", err)
	}
	if pay != nil {
		callbacks.Pay = pay
	}
	callbacks.Now = hooks.now
	rent := app.rental(cfg, pay, hooks.now, logger)
	rent.Sim = hooks.sim
	callbacks.Inbound = rent.WatchInbound(callbacks.Inbound) // a stored payment notification is applied at once
	identity, err := app.identity(ctx, cfg, logger, hooks.sms)
	if err != nil {
		return fail(e, "cannot start", err)
	}
	app.now = hooks.now
	kb, desk, err := app.assistant(cfg, rent, logger)
	if err != nil {
		return fail(e, "cannot start", err)
	}
	if err := gateway.LoadKnowledge(ctx, app.db, kb); err != nil {
		return fail(e, "cannot start: reading the knowledge base", err)
	}
	app.desk = desk
	if err := app.chatParts(cfg, logger); err != nil {
		return fail(e, "cannot start", err)
	}
	stopChat := app.runChat(ctx)
	defer stopChat()

	if app.calls, err = app.newCalls(cfg, logger); err != nil {
		return fail(e, "cannot start", err)
	}

	// Feature flags come before the workers: the bridge asks the
	// "assistant" flag for every customer message.
	if app.features, err = gateway.NewFeatures(ctx, app.db, logger); err != nil {
		return fail(e, "cannot start: reading the feature flags", err)
	}
	app.features.OwnerWeCom = cfg.OwnerWeComUserID
	workers := app.startWorkers(ctx, cfg, logger, rent)
	defer workers()
	if app.bridge != nil {
		callbacks.Inbound = app.bridge.WatchInbound(callbacks.Inbound) // a stored message is processed at once
	}
	// The video rooms (pion SFU) live in this process; their signaling goes
	// over /ws. Ports and public addresses are pion's defaults for now.
	rooms, err := media.NewManager(media.Config{Logger: logger, Hooks: app.calls.MediaHooks()})
	if err != nil {
		return fail(e, "cannot start the video rooms", err)
	}
	defer rooms.Close()
	ice, stopTURN, err := startTURN(cfg, logger)
	if err != nil {
		return fail(e, "cannot start the TURN server", err)
	}
	defer stopTURN()
	reg := prometheus.NewRegistry()
	gateway.RegisterRuntimeMetrics(reg)
	srv := gateway.New(gateway.Options{
		Logger:       logger,
		BodyLimit:    cfg.BodyLimit,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		Checks:       app.checks(),
		Channels:     cfg.Channels(),
		Registry:     reg,
		Version:      version + " " + revision,
		Callbacks:    callbacks,
		Identity:     identity,
		Rooms:        &gateway.Rooms{Manager: rooms, ICE: ice},
		Rental:       rent,
	})
	if app.bridge != nil {
		srv.MountBridge(app.bridge)
		srv.MountChat(app.bridge, app.presence)
	}
	srv.MountLive(app.live)
	srv.MountKnowledge(&gateway.Knowledge{DB: app.db, Assistant: kb, Logger: logger})
	recordings := &gateway.Recordings{Manager: rooms, DB: app.db, Dir: cfg.RecordingsPath(), DataKey: app.dataKey, Logger: logger}
	if err := srv.MountRecordings(ctx, recordings); err != nil {
		return fail(e, "cannot start recordings", err)
	}
	defer recordings.Close() // before the rooms and the database close

	srv.MountCalls(app.calls, rooms)

	srv.MountFeatures(app.features)
	srv.MountQuickHelp(&gateway.QuickHelp{DB: app.db, Features: app.features})
	kpis := &gateway.KPIs{DB: app.db, Logger: logger}
	srv.MountKPIs(kpis)
	ownerCtx, stopOwner := context.WithCancel(ctx)
	ownerDone := make(chan struct{}, 2)
	go func() { app.features.Run(ownerCtx, featureGuardEvery); ownerDone <- struct{}{} }()
	go func() { kpis.Run(ownerCtx); ownerDone <- struct{}{} }()
	defer func() { stopOwner(); <-ownerDone; <-ownerDone }()

	if off := cfg.DisabledChannels(); len(off) > 0 {
		logger.Warn("channels switched off because their settings are absent", "channels", strings.Join(off, ", "))
	}
	// The listener is open, so connections already queue: announce before
	// serving, so that anyone who gets an answer has also seen the banner.
	logger.Info("tacklegate is serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "database", app.db.Dialect, "version", version, "revision", revision)
	if hooks.started != nil {
		hooks.started("http://"+ln.Addr().String(), app.db)
		// The demo seeds its knowledge base there: read it before the first
		// request is served.
		if err := gateway.LoadKnowledge(ctx, app.db, kb); err != nil {
			logger.Warn("knowledge base reload failed", "error", err)
		}
	}
	// Other instances' edits of the knowledge base reach this one's
	// assistant through the database.
	syncCtx, stopSync := context.WithCancel(ctx)
	synced := make(chan struct{})
	go func() { gateway.SyncKnowledge(syncCtx, app.db, kb, knowledgeSyncEvery, logger); close(synced) }()
	defer func() { stopSync(); <-synced }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if err != nil {
			return fail(e, "serving stopped", err)
		}
		return exitOK
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("shutdown did not finish cleanly", "error", err)
		return exitFail
	}
	<-served
	logger.Info("stopped")
	return exitOK
}

// buildCallbacks sets up callback verification for the channels whose push
// settings are present.
func buildCallbacks(cfg config.Config, db *store.DB) (*gateway.Callbacks, error) {
	cb := &gateway.Callbacks{MaxSkew: cfg.CallbackMaxSkew, Inbound: db, WeComCorpID: cfg.WeCom.CorpID, WeComAgentID: cfg.WeCom.AgentID,
		WeComOAuthBase: cfg.WeCom.OAuthBase}
	var err error
	if cfg.WeChat.Enabled() && cfg.WeChat.Token != "" {
		if cb.WeChat, err = msgcrypt.New(cfg.WeChat.Token, cfg.WeChat.AESKey, cfg.WeChat.AppID); err != nil {
			return nil, rental.Wrap("buildCallbacks", rental.KindInvalid, "TACKLEGATE_WECHAT_AES_KEY is not usable", err)
		}
	}
	if cfg.WeCom.Enabled() {
		if cb.WeCom, err = msgcrypt.New(cfg.WeCom.Token, cfg.WeCom.AESKey, cfg.WeCom.CorpID); err != nil {
			return nil, rental.Wrap("buildCallbacks", rental.KindInvalid, "TACKLEGATE_WECOM_AES_KEY is not usable", err)
		}
	}
	return cb, nil
}

// newPayClient reads the WeChat Pay key files and builds the client; nil when
// WeChat Pay is off. Key problems are configuration errors naming the
// variable.
func newPayClient(cfg config.Config, now func() time.Time) (*wechatpay.Client, error) {
	const op = "newPayClient"
	p := cfg.WeChatPay
	if !p.Enabled() {
		return nil, nil
	}
	keyPEM, err := os.ReadFile(p.PrivateKeyFile)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE cannot be read: "+err.Error(), err)
	}
	key, err := wechatpay.LoadPrivateKey(keyPEM)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE "+err.Error(), err)
	}
	pubPEM, err := os.ReadFile(p.PlatformPublicKeyFile)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE cannot be read: "+err.Error(), err)
	}
	pub, err := wechatpay.LoadPublicKey(pubPEM)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE "+err.Error(), err)
	}
	skew := cfg.CallbackMaxSkew
	if skew == 0 {
		skew = -1 // TACKLEGATE_CALLBACK_MAX_SKEW=0 turns the check off; the client's 0 means its default
	}
	c, err := wechatpay.New(wechatpay.Config{
		MchID: p.MchID, SerialNo: p.SerialNo, PrivateKey: key, APIv3Key: p.APIv3Key,
		PlatformPublicKey: pub, PlatformSerial: p.PlatformSerial, BaseURL: p.APIBase, MaxSkew: skew, Now: now,
	})
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHATPAY_* settings: "+err.Error(), err)
	}
	return c, nil
}

func listenFailed(e env, addr string, err error) int {
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(e.stderr, "tacklegate: cannot listen on %s: port %s is already taken by another program.\n"+
			"Stop that program, or choose another port, e.g. TACKLEGATE_HTTP_ADDR=:%s\n", addr, port, suggestPort(port))
		return exitFail
	}
	fmt.Fprintf(e.stderr, "tacklegate: cannot listen on %s (TACKLEGATE_HTTP_ADDR): %v\n", addr, err)
	return exitFail
}

func suggestPort(port string) string {
	var n int
	fmt.Sscan(port, &n) //nolint:errcheck // validated by config
	if n <= 0 || n >= 65535 {
		return "8081"
	}
	return fmt.Sprint(n + 1)
}

// app holds what the gateway runs on: the database, Redis when configured,
// and the clients of the channels that are on.
type app struct {
	db      *store.DB
	dataKey []byte
	redis   *redis.Client
	wechat  *wechat.Client // nil when the mini-program channel is off
	wecom   *wecom.Client  // nil when WeCom is off
	// bridge is the message bridge (customers in WeChat ⇄ staff in WeCom),
	// set by startWorkers when both channels are on; now is the clock of its
	// conversation rules (the simulator's in demo).
	bridge *gateway.Bridge
	now    func() time.Time
	// desk is the assistant's hook into the bridge (set by serve before
	// startWorkers; nil in commands that run no bridge).
	desk *assistant.Desk
	// presence and live are staff presence and the live channel's hub
	// (chat.go), set by serve before startWorkers.
	presence *gateway.Presence
	live     *gateway.Live

	// calls is the video/voice call flow (set by serve before startWorkers;
	// nil in commands that run no gateway).
	calls *gateway.Calls

	// features are the feature flags (set by serve before startWorkers).
	features *gateway.Features
}

// featureGuardEvery is how often the feature flags' guard rails judge the
// rollouts.
const featureGuardEvery = 10 * time.Minute

// openApp opens the database (applying migrations if allowed), checks the
// data key and connects to Redis.
func openApp(ctx context.Context, cfg config.Config, logger *slog.Logger, migrate bool) (*app, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger, CreateDir: true})
	if err != nil {
		return nil, err
	}
	a := &app{db: db}
	if migrate && cfg.AutoMigrate {
		if _, err := db.Migrate(ctx); err != nil {
			a.close()
			return nil, err
		}
	}
	if n, err := db.Pending(ctx); err != nil {
		a.close()
		return nil, err
	} else if n > 0 {
		a.close()
		return nil, rental.Errorf("openApp", rental.KindUnavailable,
			"the database schema is %d migration(s) behind; run `tacklegate migrate up` (TACKLEGATE_AUTO_MIGRATE is off)", n)
	}
	key := cfg.DataKey
	if len(key) == 0 {
		if key, err = dataKeyFile(cfg, logger); err != nil {
			a.close()
			return nil, err
		}
	}
	if err := db.UseDataKey(ctx, key); err != nil {
		a.close()
		return nil, err
	}
	a.dataKey = key
	if cfg.RedisURL != "" {
		if a.redis, err = redis.Open(ctx, cfg.RedisURL); err != nil {
			a.close()
			return nil, err
		}
	}
	if err := a.openClients(cfg, logger); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// openClients builds the WeChat and WeCom API clients of the channels that
// are on. With Redis, instances share one access token per app.
func (a *app) openClients(cfg config.Config, logger *slog.Logger) error {
	var tokens token.Store
	if a.redis != nil {
		tokens = redis.NewTokenCache(a.redis, "")
	}
	var err error
	if cfg.WeChat.Enabled() {
		a.wechat, err = wechat.New(wechat.Config{AppID: cfg.WeChat.AppID, AppSecret: cfg.WeChat.AppSecret,
			APIBase: cfg.WeChat.APIBase, TokenStore: tokens, Logger: logger})
		if err != nil {
			return rental.Wrap("openClients", rental.KindInvalid, "the mini-program client cannot start (TACKLEGATE_WECHAT_*)", err)
		}
	}
	if cfg.WeCom.Enabled() {
		a.wecom, err = wecom.New(wecom.Config{CorpID: cfg.WeCom.CorpID, Secret: cfg.WeCom.Secret, AgentID: cfg.WeCom.AgentID,
			APIBase: cfg.WeCom.APIBase, TokenStore: tokens, Logger: logger})
		if err != nil {
			return rental.Wrap("openClients", rental.KindInvalid, "the WeCom client cannot start (TACKLEGATE_WECOM_*)", err)
		}
	}
	return nil
}

// identity sets up logins: the owner's first password, the SMS sender and
// the channels' clients.
func (a *app) identity(ctx context.Context, cfg config.Config, logger *slog.Logger, also sms.Sender) (*gateway.Identity, error) {
	seeded, err := gateway.SeedOwner(ctx, a.db, cfg.OwnerUsername, cfg.OwnerPassword)
	if err != nil {
		return nil, err
	}
	if seeded {
		logger.Info("owner login created from TACKLEGATE_OWNER_PASSWORD; change it in the owner console", "username", cfg.OwnerUsername)
	} else if _, ok, _ := a.db.OwnerPasswordHash(ctx, cfg.OwnerUsername); !ok {
		logger.Warn("the owner cannot log in yet: set TACKLEGATE_OWNER_PASSWORD (at least 10 characters) for the first start", "username", cfg.OwnerUsername)
	}
	logger.Warn("SMS codes are written to this log, not sent: no SMS provider is configured")
	var sender sms.Sender = sms.NewLogSender(logger)
	if also != nil {
		sender = sms.Both(sender, also)
	}
	id := &gateway.Identity{DB: a.db, DataKey: a.dataKey, SMS: sender, SMSLimits: gateway.DefaultSMSLimits, OwnerUsername: cfg.OwnerUsername}
	// Assign only real clients: a nil *wechat.Client in the interface would not be nil.
	if a.wechat != nil {
		id.WeChat = a.wechat
	}
	if a.wecom != nil {
		id.WeCom = a.wecom
	}
	return id, nil
}

// startWorkers runs the outbox worker and the rental payment jobs until ctx
// ends or the returned stop is called, and waits for them to finish.
func (a *app) startWorkers(ctx context.Context, cfg config.Config, logger *slog.Logger, rent *gateway.Rental) (stop func()) {
	handlers := a.rentalHandlers(cfg, rent)
	if cfg.MemberWebhook.URL != "" {
		a.db.EmitMemberEvents(true)
		hook := &members.Webhook{URL: cfg.MemberWebhook.URL, Secret: []byte(cfg.MemberWebhook.Secret)}
		handlers[store.KindMemberDirectory] = hook.Deliverer()
	}
	if a.wechat != nil && a.wecom != nil {
		var err error
		if a.bridge, err = gateway.NewBridge(a.withChat(cfg, gateway.BridgeOptions{DB: a.db, WeChat: a.wechat, WeCom: a.wecom, Logger: logger, Now: a.now,
			Assistant: a.desk, Video: a.callsVideo(), AssistantFor: (&gateway.AssistantGate{Features: a.features}).Serves, ShopHours: true})); err != nil {
			logger.Error("the message bridge cannot start", "error", err)
		} else {
			maps.Copy(handlers, a.bridge.Handlers())
		}
	} else {
		logger.Info("the message bridge is off: it needs both the mini-program and WeCom channels")
	}
	if a.calls != nil {
		maps.Copy(handlers, a.calls.Handlers())
	}
	if a.wecom != nil {
		handlers[gateway.KindOwnerNotice] = gateway.OwnerNotices(a.wecom) // guard-rail pauses, to the owner in WeCom
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { runOutboxWorkers(wctx, a.db, handlers, logger); close(done) }()
	jobsDone := make(chan struct{})
	go func() { rent.Run(wctx); close(jobsDone) }()
	callsDone := make(chan struct{})
	go func() {
		if a.calls != nil {
			a.calls.Run(wctx)
		}
		close(callsDone)
	}()
	bridgeDone := make(chan struct{})
	go func() {
		if a.bridge != nil {
			a.bridge.Run(wctx)
		}
		close(bridgeDone)
	}()
	return func() { cancel(); <-done; <-jobsDone; <-bridgeDone; <-callsDone }
}

func (a *app) checks() map[string]gateway.Check {
	checks := map[string]gateway.Check{
		"database": func(ctx context.Context) error {
			if err := a.db.Ping(ctx); err != nil {
				return err
			}
			if n, err := a.db.Pending(ctx); err != nil {
				return err
			} else if n > 0 {
				return fmt.Errorf("%d migration(s) pending", n)
			}
			return nil
		},
	}
	if a.redis != nil {
		checks["redis"] = a.redis.Ping
	}
	if a.wechat != nil || a.wecom != nil {
		// Upstream calls must go through our transport (API base, contexts).
		checks["upstream_http"] = func(context.Context) error { return apibase.Check() }
	}
	return checks
}

func (a *app) close() {
	if a.wechat != nil {
		a.wechat.Close()
	}
	if a.wecom != nil {
		a.wecom.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	a.db.Close()
}

// dataKeyFile reads the data key from data.key beside the SQLite database (or
// ./data/data.key with PostgreSQL), creating it on first start. Setting
// TACKLEGATE_DATA_KEY is better in production: the key then lives with the
// other secrets, apart from the data it protects.
func dataKeyFile(cfg config.Config, logger *slog.Logger) ([]byte, error) {
	const op = "dataKeyFile"
	dir := "./data"
	if driver, dsn, _ := config.ParseDatabaseURL(cfg.DatabaseURL); driver == store.SQLite && dsn != ":memory:" {
		dir = filepath.Dir(dsn)
	}
	path := filepath.Join(dir, "data.key")
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) != 32 {
			return nil, rental.Errorf(op, rental.KindInvalid, "%s does not hold a base64 32-byte key; restore it from your backup or set TACKLEGATE_DATA_KEY", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, rental.Wrap(op, rental.KindUnavailable, "cannot read "+path, err)
	}
	key := make([]byte, 32)
	rand.Read(key) //nolint:errcheck // crypto/rand never fails on Linux
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "cannot create "+dir, err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "cannot write "+path, err)
	}
	logger.Warn("TACKLEGATE_DATA_KEY is not set: generated a data key; back it up, evidence cannot be read without it", "file", path)
	return key, nil
}

func cmdMigrate(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "migrate", "migrate [--config FILE] up|status",
		"up applies every pending schema migration; status lists them with the time each was applied.")
	cfgPath := fs.String("config", "", "YAML file with settings")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		fmt.Fprintln(e.stderr, "tacklegate migrate: say up or status")
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig(e, *cfgPath, e.getenv)
	if !ok {
		return exitUsage
	}
	logger := newLogger(cfg, e.stderr)
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger, CreateDir: fs.Arg(0) == "up"})
	if err != nil {
		return fail(e, "migrate", err)
	}
	defer db.Close()
	if fs.Arg(0) == "up" {
		applied, err := db.Migrate(ctx)
		if err != nil {
			return fail(e, "migrate up", err)
		}
		if len(applied) == 0 {
			fmt.Fprintln(e.stdout, "the schema is up to date")
		}
		for _, m := range applied {
			fmt.Fprintf(e.stdout, "applied %05d %s\n", m.Version, m.Name)
		}
		return exitOK
	}
	st, err := db.Status(ctx)
	if err != nil {
		return fail(e, "migrate status", err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	fmt.Fprintf(e.stdout, "%-8s %-8s %-28s %s\n", "VERSION", "STATE", "APPLIED AT (Asia/Shanghai)", "NAME")
	for _, m := range st {
		state, at := "pending", "-"
		if m.Applied {
			state, at = "applied", m.AppliedAt.In(shanghai).Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(e.stdout, "%-8d %-8s %-28s %s\n", m.Version, state, at, m.Name)
	}
	return exitOK
}
