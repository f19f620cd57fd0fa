package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/config"
)

// demoDefaults are what demo sets where the user has set nothing: SQLite
// under ./data. Everything the user sets still wins.
var demoDefaults = map[string]string{
	"TACKLEGATE_DATABASE_URL": "sqlite:///./data/tacklegate.db",
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
	return serve(ctx, e, cfg, serveHooks{ln: ln, now: w.sim.Clock().Now, started: func(base string, db *store.DB) {
		w.pointAt(base)
		printDemoBanner(e, cfg, db, w)
	}})
}

func printDemoBanner(e env, cfg config.Config, db *store.DB, w *simWorld) {
	out, public := e.stdout, cfg.PublicURL
	fmt.Fprintln(out, "tacklegate demo is running (Ctrl+C stops it)")
	fmt.Fprintf(out, "  simulator   %s/sim   (play the customer in WeChat and the staff member in WeCom)\n", w.url)
	fmt.Fprintf(out, "  health      %s/healthz\n", public)
	fmt.Fprintf(out, "  readiness   %s/readyz\n", public)
	fmt.Fprintf(out, "  metrics     %s/metrics\n", public)
	where := db.Dialect
	if _, dsn, _ := config.ParseDatabaseURL(cfg.DatabaseURL); db.Dialect == store.SQLite {
		where = dsn + " (SQLite)"
	}
	fmt.Fprintf(out, "  database    %s\n", where)
}
