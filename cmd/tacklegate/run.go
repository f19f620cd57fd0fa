package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/rental"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // something went wrong while running
	exitUsage = 2 // the command line or the configuration is wrong
)

// env is what a command may touch of the outside world. Tests pass their own.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the gateway from configuration", cmdServe},
		{"demo", "run the gateway with a seeded shop, zero configuration", cmdDemo},
		{"sim", "run only the simulator of WeChat, WeCom and WeChat Pay", cmdSim},
		{"migrate", "apply or list schema migrations (migrate up|status)", cmdMigrate},
		{"members", "import the shop's existing members (members import FILE.csv)", cmdMembers},
		{"reconcile", "compare payments and refunds with WeChat Pay's records", cmdReconcile},
		{"bench", "load generators that print figures (bench messages, bench rooms)", cmdBench},
		{"version", "print version and build information", cmdVersion},
	}
}

// run is the whole program: it parses the subcommand and builds everything
// by hand. It returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "tacklegate: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tacklegate puts a fishing-tackle rental shop onto WeChat, WeCom and WeChat Pay.")
	fmt.Fprintln(w, "\nUsage: tacklegate COMMAND [options]   (tacklegate COMMAND --help for its options)\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration comes from TACKLEGATE_* environment variables, optionally on top of a YAML file (--config).")
}

// newFlags builds a command's flag set with a --help that explains it.
func newFlags(e env, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tacklegate %s\n\n%s\n\nOptions:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; help goes to stdout with exit 0, mistakes to
// stderr with exit 2. done is true when the command should stop.
func parseFlags(fs *flag.FlagSet, e env, args []string) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(e.stdout)
		fs.Usage()
		return exitOK, true
	}
	if err != nil {
		return exitUsage, true
	}
	return exitOK, false
}

// loadConfig loads and validates the configuration; on failure it prints
// every problem, one line each naming the variable, and returns false.
func loadConfig(e env, path string, getenv func(string) string) (config.Config, bool) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		fmt.Fprintln(e.stderr, "tacklegate: invalid configuration:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(e.stderr, "  "+line)
		}
		return cfg, false
	}
	return cfg, true
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) //nolint:errcheck // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// fail prints err for a person: the user-safe message first, the cause after.
func fail(e env, what string, err error) int {
	msg := rental.ErrorMessage(err)
	if msg == "" {
		msg = err.Error()
	} else if errors.Unwrap(err) != nil {
		msg += " (" + errors.Unwrap(err).Error() + ")"
	}
	fmt.Fprintf(e.stderr, "tacklegate: %s: %s\n", what, msg)
	return exitFail
}

// buildInfo describes this binary.
func buildInfo() (version, revision, goVersion string) {
	version, revision = "dev", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision, "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
			if len(revision) > 12 {
				revision = revision[:12]
			}
		case "vcs.modified":
			if s.Value == "true" {
				revision += "-dirty"
			}
		}
	}
	return version, revision, bi.GoVersion
}

func cmdVersion(_ context.Context, e env, args []string) int {
	fs := newFlags(e, "version", "version", "Prints the version, the source revision and the Go version.")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	v, rev, gov := buildInfo()
	fmt.Fprintf(e.stdout, "tacklegate %s (revision %s, %s, %s/%s)\n", v, rev, gov, runtime.GOOS, runtime.GOARCH)
	return exitOK
}
