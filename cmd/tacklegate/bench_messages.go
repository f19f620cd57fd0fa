package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/config"
)

// benchMessages runs the gateway as serve runs it, against the simulator,
// and has N customers write through the simulator's real callback path
// (signed, encrypted pushes to /callbacks/wechat) while simulated staff
// answer through WeCom callbacks as soon as a message reaches their WeCom
// inbox, then close the conversation so the queue moves. It counts what
// arrived, what arrived twice and how long it took, on the simulator's
// clock:
//
//	customer → staff: from just before the customer's push until the WeCom
//	                  app message is accepted by the simulator
//	staff → customer: from just before the staff member's WeCom callback
//	                  until the customer-service message is accepted
func benchMessages(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "bench messages", "bench messages [--customers N] [--staff N] [--parallel N] [--database URL] [--timeout D]",
		"Starts the simulator and the gateway (bridge, outbox, presence) in this process, then N customers each send\n"+
			"one message through the simulator's real push path while simulated staff reply through WeCom callbacks\n"+
			"and close each conversation. Prints messages lost and duplicated in each direction and latency\n"+
			"percentiles. The simulator's WeCom per-member rate limit is lifted (the real one, 30 a minute per member,\n"+
			"would decide the figures instead of the gateway). --database must be a scratch database: SQLite in a\n"+
			"temporary folder by default, or an empty PostgreSQL database.")
	customers := fs.Int("customers", 500, "simulated customers, one message each")
	staffN := fs.Int("staff", 10, "simulated staff members (each takes up to 8 conversations at a time)")
	parallel := fs.Int("parallel", 50, "customers writing at the same time")
	dbURL := fs.String("database", "", "database URL (default: SQLite in a temporary folder)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up waiting for deliveries after this long")
	verbose := fs.Bool("v", false, "show the gateway's log")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	if *customers < 1 || *staffN < 1 || *parallel < 1 {
		fmt.Fprintln(e.stderr, "tacklegate bench messages: --customers, --staff and --parallel must be at least 1")
		return exitUsage
	}

	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	staff := make([]string, *staffN)
	for i := range staff {
		staff[i] = fmt.Sprintf("bench-%s-s%d", run, i+1)
	}
	simCfg := wxsim.DefaultConfig()
	simCfg.Rules.WeComPerUserMinute, simCfg.Rules.WeComPerUserHour = 1<<30, 1<<30
	simCfg.StaffUserIDs = append(simCfg.StaffUserIDs, staff...)
	sim, err := wxsim.Start(simCfg, nil)
	if err != nil {
		return fail(e, "bench: cannot start the simulator", err)
	}
	defer sim.Close()
	dir, err := os.MkdirTemp("", "tacklegate-bench-")
	if err != nil {
		return fail(e, "bench", err)
	}
	defer os.RemoveAll(dir)
	if *dbURL == "" {
		*dbURL = "sqlite://" + filepath.Join(dir, "bench.db")
	}
	settings := map[string]string{
		"TACKLEGATE_DATABASE_URL": *dbURL, "TACKLEGATE_LOG_LEVEL": "warn",
		// A fixed key: a scratch database used by an earlier bench opens again.
		"TACKLEGATE_DATA_KEY":           base64.StdEncoding.EncodeToString([]byte("tacklegate bench data key 32byte")),
		"TACKLEGATE_CHAT_SUPPORT_HOURS": "always", "TACKLEGATE_ASSISTANT_MODE": "off", "TACKLEGATE_CHAT_REASSIGN_AFTER": "0",
		"TACKLEGATE_WECHAT_APP_ID": simCfg.AppID, "TACKLEGATE_WECHAT_APP_SECRET": simCfg.AppSecret,
		"TACKLEGATE_WECHAT_TOKEN": simCfg.Token, "TACKLEGATE_WECHAT_AES_KEY": simCfg.EncodingAESKey,
		"TACKLEGATE_WECHAT_API_BASE": sim.WeChatBase(),
		"TACKLEGATE_WECOM_CORP_ID":   simCfg.CorpID, "TACKLEGATE_WECOM_AGENT_ID": strconv.Itoa(simCfg.AgentID),
		"TACKLEGATE_WECOM_SECRET": simCfg.CorpSecret, "TACKLEGATE_WECOM_TOKEN": simCfg.WeComToken,
		"TACKLEGATE_WECOM_AES_KEY": simCfg.WeComAESKey, "TACKLEGATE_WECOM_API_BASE": sim.WeComBase(),
		"TACKLEGATE_HTTP_ADDR": "127.0.0.1:0",
	}
	cfg, ok := loadConfig(e, "", func(k string) string { return settings[k] })
	if !ok {
		return exitUsage
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(e, "bench", err)
	}
	serveEnv := env{getenv: e.getenv, stdout: io.Discard, stderr: io.Discard}
	if *verbose {
		serveEnv.stderr = e.stderr
	}
	gctx, stopGateway := context.WithCancel(ctx)
	started := make(chan error, 1)
	served := make(chan int, 1)
	go func() {
		served <- serve(gctx, serveEnv, cfg, serveHooks{ln: ln, now: sim.Clock().Now, started: func(base string, db *store.DB) {
			for i, s := range staff {
				if _, err := db.SaveStaff(ctx, s, fmt.Sprintf("店员%d", i+1), true); err != nil {
					started <- err
					return
				}
			}
			sim.SetPushURL(base + "/callbacks/wechat")
			sim.SetWeComCallbackURL(base + "/callbacks/wecom")
			started <- nil
		}})
	}()
	select {
	case err := <-started:
		if err != nil {
			stopGateway()
			<-served
			return fail(e, "bench: cannot register the staff", err)
		}
	case code := <-served:
		stopGateway()
		fmt.Fprintln(e.stderr, "tacklegate bench messages: the gateway did not start (run with -v to see why)")
		return code
	}
	defer func() { stopGateway(); <-served }()

	b := &msgBench{sim: sim, run: run, sent: map[string]time.Time{}, replied: map[string]time.Time{}}
	dialect := "SQLite"
	if driver, _, _ := config.ParseDatabaseURL(cfg.DatabaseURL); driver == store.Postgres {
		dialect = "PostgreSQL"
	}
	fmt.Fprintf(e.stdout, "tacklegate bench messages: %d customers, %d staff, %d writing at once, %s\n", *customers, *staffN, *parallel, dialect)

	// Staff: answer what reaches their WeCom inbox, then close.
	sctx, stopStaff := context.WithCancel(ctx)
	var staffWG sync.WaitGroup
	for _, s := range staff {
		staffWG.Add(1)
		go func() { defer staffWG.Done(); b.staffLoop(sctx, s) }()
	}

	// Customers.
	start := time.Now()
	var next atomic.Int64
	var sendWG sync.WaitGroup
	var sendErrs atomic.Int64
	for range *parallel {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for {
				i := int(next.Add(1))
				if i > *customers || ctx.Err() != nil {
					return
				}
				if err := b.customerWrites(ctx, i); err != nil {
					sendErrs.Add(1)
				}
			}
		}()
	}
	progress := newProgress(e.stderr, *customers)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress.show(b.answered())
			}
		}
	}()
	sendWG.Wait()
	ingest := time.Since(start)
	deadline := time.Now().Add(*timeout)
	for b.answered() < *customers && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	close(done)
	progress.show(b.answered())
	progress.finish()
	// Let anything late (a duplicate) arrive before counting.
	time.Sleep(time.Second)
	stopStaff()
	staffWG.Wait()
	total := time.Since(start)

	r := b.report(*customers, staff)
	out := e.stdout
	fmt.Fprintf(out, "ingest: %d customer pushes accepted in %s (%.0f/s); %d failed to push\n", int64(*customers)-sendErrs.Load(), ingest.Round(time.Millisecond),
		float64(*customers)/ingest.Seconds(), sendErrs.Load())
	fmt.Fprintf(out, "customer → staff: %d sent, %d delivered, %d lost, %d duplicated; latency %s\n", *customers, r.toStaff, *customers-r.toStaff, r.dupStaff, percentiles(r.latStaff))
	fmt.Fprintf(out, "staff → customer: %d sent, %d delivered, %d lost, %d duplicated; latency %s\n", r.replies, r.toCustomer, r.replies-r.toCustomer, r.dupCustomer, percentiles(r.latCustomer))
	fmt.Fprintf(out, "all answered in %s\n", total.Round(time.Millisecond))
	if r.toStaff != *customers || r.dupStaff != 0 || r.toCustomer != r.replies || r.dupCustomer != 0 || sendErrs.Load() > 0 {
		return exitFail
	}
	return exitOK
}

// msgBench keeps what was sent and when.
type msgBench struct {
	sim *wxsim.Simulator
	run string

	mu      sync.Mutex
	sent    map[string]time.Time // customer token → sim time before the push
	replied map[string]time.Time // customer token → sim time before the staff callback
}

func (b *msgBench) openID(i int) string { return fmt.Sprintf("o-bench-%s-%d", b.run, i) }
func (b *msgBench) token(i int) string  { return fmt.Sprintf("bm-%s-%d", b.run, i) }

func (b *msgBench) customerWrites(ctx context.Context, i int) error {
	tok := b.token(i)
	b.mu.Lock()
	b.sent[tok] = b.sim.Clock().Now()
	b.mu.Unlock()
	p, err := b.sim.CustomerSends(ctx, b.openID(i), wxsim.TextMessage("租竿问题 "+tok))
	if err == nil && !p.Delivered() {
		err = fmt.Errorf("push outcome %s", p.Outcome)
	}
	return err
}

var benchTag = regexp.MustCompile(`^\[#(A\d+) [^\]]*\] 租竿问题 (bm-[0-9a-f]+-\d+)$`)

// staffLoop answers each customer message once, as it arrives, then
// closes the conversation.
func (b *msgBench) staffLoop(ctx context.Context, userID string) {
	seen := 0
	for ctx.Err() == nil {
		inbox := b.sim.StaffInbox(userID)
		for _, d := range inbox[seen:] {
			m := benchTag.FindStringSubmatch(d.Content)
			if m == nil {
				continue
			}
			code, tok := m[1], m[2]
			b.mu.Lock()
			_, done := b.replied[tok]
			if !done {
				b.replied[tok] = b.sim.Clock().Now()
			}
			b.mu.Unlock()
			if done {
				continue // a duplicate delivery: counted in the report, not answered twice
			}
			if _, err := b.sim.StaffSends(ctx, userID, wxsim.TextMessage("#"+code+" 答复 "+tok)); err != nil {
				continue
			}
			b.sim.StaffSends(ctx, userID, wxsim.TextMessage("/close "+code)) //nolint:errcheck // the queue moves on the next close
		}
		seen = len(inbox)
		time.Sleep(20 * time.Millisecond)
	}
}

// answered counts customers whose reply has arrived.
func (b *msgBench) answered() int {
	n := 0
	b.mu.Lock()
	toks := make([]string, 0, len(b.replied))
	for tok := range b.replied {
		toks = append(toks, tok)
	}
	b.mu.Unlock()
	for _, tok := range toks {
		i, _ := strconv.Atoi(tok[strings.LastIndexByte(tok, '-')+1:])
		for _, d := range b.sim.Delivered(b.openID(i)) {
			if d.Kind == "custom" && strings.Contains(d.Text, "答复 "+tok) {
				n++
				break
			}
		}
	}
	return n
}

type msgReport struct {
	toStaff, dupStaff, replies, toCustomer, dupCustomer int
	latStaff, latCustomer                               []time.Duration
}

func (b *msgBench) report(customers int, staff []string) msgReport {
	var r msgReport
	arrived := map[string][]time.Time{}
	for _, s := range staff {
		for _, d := range b.sim.StaffInbox(s) {
			if m := benchTag.FindStringSubmatch(d.Content); m != nil {
				arrived[m[2]] = append(arrived[m[2]], d.At)
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for tok, at := range arrived {
		if sent, ok := b.sent[tok]; ok {
			r.toStaff++
			r.dupStaff += len(at) - 1
			r.latStaff = append(r.latStaff, at[0].Sub(sent))
		}
	}
	r.replies = len(b.replied)
	for i := 1; i <= customers; i++ {
		tok := b.token(i)
		sentAt, ok := b.replied[tok]
		if !ok {
			continue
		}
		var got []time.Time
		for _, d := range b.sim.Delivered(b.openID(i)) {
			if d.Kind == "custom" && strings.Contains(d.Text, "答复 "+tok) {
				got = append(got, d.At)
			}
		}
		if len(got) > 0 {
			r.toCustomer++
			r.dupCustomer += len(got) - 1
			r.latCustomer = append(r.latCustomer, got[0].Sub(sentAt))
		}
	}
	return r
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "(none)"
	}
	slices.Sort(d)
	at := func(p float64) time.Duration {
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s", at(0.50), at(0.90), at(0.99), d[len(d)-1].Round(100*time.Microsecond))
}

// progress draws a bar on stderr.
type progress struct {
	w     io.Writer
	total int
	last  int
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total, last: -1} }

func (p *progress) show(n int) {
	if n == p.last {
		return
	}
	p.last = n
	const width = 30
	filled := width * n / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d answered", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), n, p.total)
}

func (p *progress) finish() { fmt.Fprintln(p.w) }
