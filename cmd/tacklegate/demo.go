package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/rental"
)

// demoDefaults are what demo sets where the user has set nothing: SQLite
// under ./data. Everything the user sets still wins.
var demoDefaults = map[string]string{
	"TACKLEGATE_DATABASE_URL": "sqlite:///./data/tacklegate.db",
	// The simulator's 老王 stands in for the owner in WeCom (guard-rail notices).
	"TACKLEGATE_OWNER_WECOM_USERID": "laowang",
}

func cmdDemo(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "demo", "demo [--config FILE] [--print-config]",
		"Runs the gateway with the built-in simulator of WeChat, WeCom and WeChat Pay and everything on an\n"+
			"embedded SQLite database under ./data, with zero configuration. Listens on :8080 unless\n"+
			"TACKLEGATE_HTTP_ADDR says otherwise.")
	cfgPath := fs.String("config", "", "YAML file with settings")
	printCfg := fs.Bool("print-config", false, "print the effective configuration, secrets redacted, and exit")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	getenv := func(k string) string {
		if v := e.getenv(k); v != "" {
			return v
		}
		return demoDefaults[k]
	}
	// The user's own settings are checked before anything is started or written.
	cfg, ok := loadConfig(e, *cfgPath, getenv)
	if !ok {
		return exitUsage
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return listenFailed(e, cfg.HTTPAddr, err)
	}
	defer ln.Close()
	dataDir := "./data"
	if driver, dsn, _ := config.ParseDatabaseURL(cfg.DatabaseURL); driver == store.SQLite && dsn != ":memory:" {
		dataDir = filepath.Dir(dsn)
	}
	w, err := startSim("127.0.0.1:0", filepath.Join(dataDir, "sim"), newLogger(cfg, e.stderr))
	if err != nil {
		return fail(e, "cannot start the simulator", err)
	}
	defer w.close()
	simEnv := map[string]string{}
	for _, kv := range w.env() {
		simEnv[kv[0]] = kv[1]
	}
	ownerPass, err := demoOwnerPassword(dataDir)
	if err != nil {
		return fail(e, "demo", err)
	}
	simEnv["TACKLEGATE_OWNER_PASSWORD"] = ownerPass
	cfg, ok = loadConfig(e, *cfgPath, func(k string) string {
		if v := e.getenv(k); v != "" {
			return v
		}
		if v := simEnv[k]; v != "" {
			return v
		}
		return demoDefaults[k]
	})
	if !ok {
		return exitUsage
	}
	if *printCfg {
		fmt.Fprintln(e.stdout, strings.Join(cfg.Redacted(), "\n"))
		return exitOK
	}
	toPhone := sms.Func(func(_ context.Context, phone, text string) error { w.sim.ReceiveSMS(phone, text); return nil })
	return serve(ctx, e, cfg, serveHooks{ln: ln, now: w.sim.Clock().Now, sms: toPhone, sim: &gateway.DemoSim{URL: w.url}, started: func(base string, db *store.DB) {
		w.pointAt(base)
		if err := seedDemo(ctx, db); err != nil {
			fmt.Fprintln(e.stderr, "tacklegate demo: seeding the shop failed:", err)
		}
		printDemoBanner(e, cfg, db, w)
		if cfg.OwnerPassword == ownerPass {
			fmt.Fprintf(e.stdout, "  owner login %s / %s   (kept in %s)\n", cfg.OwnerUsername, ownerPass, filepath.Join(dataDir, "owner-password"))
		}
	}})
}

func printDemoBanner(e env, cfg config.Config, db *store.DB, w *simWorld) {
	out, public := e.stdout, cfg.PublicURL
	fmt.Fprintln(out, "tacklegate demo is running (Ctrl+C stops it)")
	fmt.Fprintf(out, "  simulator   %s/sim   (play the customer in WeChat and the staff member in WeCom)\n", w.url)
	fmt.Fprintf(out, "  customer    %s/   (the mini-program's pages in a browser: 模拟微信登录, pay in the simulator)\n", public)
	fmt.Fprintf(out, "  members     %d imported (e.g. 张伟 138 0013 8001, gold): prove that phone as a customer to land in the account\n", demoMemberCount)
	fmt.Fprintf(out, "  staff       %s/staff   (laowang 老王, xiaoli 小李, ahua 阿华: 用企业微信账号登录, then pick one in the simulated WeCom)\n", public)
	fmt.Fprintf(out, "  owner       %s/owner   (KPIs, feature flags, quick help, knowledge base)\n", public)
	fmt.Fprintf(out, "  health      %s/healthz\n", public)
	fmt.Fprintf(out, "  readiness   %s/readyz\n", public)
	fmt.Fprintf(out, "  metrics     %s/metrics\n", public)
	where := db.Dialect
	if _, dsn, _ := config.ParseDatabaseURL(cfg.DatabaseURL); db.Dialect == store.SQLite {
		where = dsn + " (SQLite)"
	}
	fmt.Fprintf(out, "  database    %s\n", where)
}

// demoOwnerPassword makes the demo owner's password once and keeps it, so a
// restarted demo prints the password that works.
func demoOwnerPassword(dir string) (string, error) {
	path := filepath.Join(dir, "owner-password")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 10 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [9]byte
	rand.Read(raw[:]) //nolint:errcheck // crypto/rand never fails on Linux
	pass := "tg-" + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return pass, os.WriteFile(path, []byte(pass+"\n"), 0o600)
}

// demoMembers are the shop's existing members in the demo: log in as a
// customer in the simulator and prove one of these phones to land in it.
var demoMembers = []store.MemberImport{
	{Line: 2, MemberNo: "YJ0001", Name: "张伟", Phone: "8613800138001", Tier: "gold", Points: 2380},
	{Line: 3, MemberNo: "YJ0002", Name: "李娜", Phone: "8613800138002", Tier: "silver", Points: 640},
	{Line: 4, MemberNo: "YJ0003", Name: "王强", Phone: "8613800138003", Tier: "regular", Points: 90},
	{Line: 5, MemberNo: "YJ0004", Name: "刘洋", Phone: "8613800138004", Tier: "gold", Points: 5120},
	{Line: 6, MemberNo: "YJ0005", Name: "陈静", Phone: "8613800138005", Tier: "regular", Points: 15},
}

// seedDemo registers the simulator's staff, imports the demo members,
// stocks the demo shop and gives the assistant the demo knowledge base (only
// while the shop has none); all idempotent, so a restarted demo keeps its
// data and the owner's edits.
func seedDemo(ctx context.Context, db *store.DB) error {
	if err := seedShop(ctx, db); err != nil {
		return err
	}
	if _, err := gateway.SeedKnowledge(ctx, db); err != nil {
		return err
	}
	for userID, name := range map[string]string{"laowang": "老王", "xiaoli": "小李", "ahua": "阿华"} {
		if _, err := db.SaveStaff(ctx, userID, name, true); err != nil {
			return err
		}
	}
	joined := time.Date(2023, 4, 1, 0, 0, 0, 0, time.UTC)
	rows := append([]store.MemberImport(nil), demoMembers...)
	for i := range rows {
		rows[i].JoinedAt = joined.AddDate(0, i, 0)
	}
	rows = append(rows, demoMemberBook(demoMemberCount-len(rows), len(rows)+2, joined)...)
	_, err := db.ImportMembers(ctx, rows, nil)
	return err
}

// demoMemberCount is how many members the demo shop has: a small shop's
// card file, enough that a feature rolled out to 10 % reaches a visible
// handful of them.
const demoMemberCount = 300

// demoMemberBook makes the rest of the demo's members, the same on every
// start (an import is an upsert by member number): names from common
// surnames and given names, phones in a block of their own, tiers about
// 70 % regular, 20 % silver, 10 % gold.
func demoMemberBook(n, firstLine int, joined time.Time) []store.MemberImport {
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	given := []string{"伟", "芳", "敏", "静", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "建国", "海燕", "志强", "丽娟", "春生", "国华"}
	out := make([]store.MemberImport, n)
	for i := range out {
		no := firstLine - 1 + i // YJ0006 onwards
		tier, points := "regular", (i*37)%400
		switch {
		case i%10 == 3:
			tier, points = "gold", 1500+(i*53)%4000
		case i%5 == 1:
			tier, points = "silver", 400+(i*29)%1200
		}
		out[i] = store.MemberImport{Line: firstLine + i, MemberNo: fmt.Sprintf("YJ%04d", no),
			Name:  string(surnames[(i*7)%len(surnames)]) + given[(i*11)%len(given)],
			Phone: fmt.Sprintf("86139%08d", 20000000+no), Tier: rental.Tier(tier), Points: int64(points),
			JoinedAt: joined.AddDate(0, 0, 3*(i+5))}
	}
	return out
}
