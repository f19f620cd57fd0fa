package main

import (
	"context"
	"fmt"
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
		"Runs the gateway with everything on an embedded SQLite database under ./data, with zero configuration.\n"+
			"Listens on :8080 unless TACKLEGATE_HTTP_ADDR says otherwise.")
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
	cfg, ok := loadConfig(e, *cfgPath, getenv)
	if !ok {
		return exitUsage
	}
	if *printCfg {
		fmt.Fprintln(e.stdout, strings.Join(cfg.Redacted(), "\n"))
		return exitOK
	}
	return serve(ctx, e, cfg, serveHooks{started: func(base string, db *store.DB) {
		printDemoBanner(e, cfg, db)
	}})
}

func printDemoBanner(e env, cfg config.Config, db *store.DB) {
	w, public := e.stdout, cfg.PublicURL
	fmt.Fprintln(w, "tacklegate demo is running (Ctrl+C stops it)")
	fmt.Fprintf(w, "  health      %s/healthz\n", public)
	fmt.Fprintf(w, "  readiness   %s/readyz\n", public)
	fmt.Fprintf(w, "  metrics     %s/metrics\n", public)
	where := db.Dialect
	if _, dsn, _ := config.ParseDatabaseURL(cfg.DatabaseURL); db.Dialect == store.SQLite {
		where = dsn + " (SQLite)"
	}
	fmt.Fprintf(w, "  database    %s\n", where)
}
