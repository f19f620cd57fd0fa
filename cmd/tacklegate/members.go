package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/store"
)

func cmdMembers(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "members", "members [--config FILE] import FILE.csv",
		"import reads the shop's membership export (columns member_no,name,phone,tier,points,joined_at;\n"+
			"UTF-8 with or without BOM, or GBK as Excel saves it) and upserts by member_no. A re-run changes\n"+
			"nothing; a file with any bad row imports nothing and lists every bad row with its line.")
	cfgPath := fs.String("config", "", "YAML file with settings")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	if fs.NArg() != 2 || fs.Arg(0) != "import" {
		fmt.Fprintln(e.stderr, "tacklegate members: say import FILE.csv")
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig(e, *cfgPath, e.getenv)
	if !ok {
		return exitUsage
	}
	f, err := os.Open(fs.Arg(1))
	if err != nil {
		fmt.Fprintf(e.stderr, "tacklegate members import: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	start := time.Now()
	parsed, err := members.ParseCSV(f, 200<<20)
	if err != nil {
		return fail(e, "members import", err)
	}
	if len(parsed.Errors) > 0 {
		for _, re := range parsed.Errors {
			fmt.Fprintf(e.stderr, "%s:%d: %s\n", fs.Arg(1), re.Line, re.Message)
		}
		fmt.Fprintf(e.stderr, "tacklegate members import: %d bad rows; nothing was imported\n", len(parsed.Errors))
		return exitFail
	}
	logger := newLogger(cfg, io.Discard)
	app, err := openApp(ctx, cfg, logger, true)
	if err != nil {
		return fail(e, "members import", err)
	}
	defer app.close()
	fmt.Fprintf(e.stderr, "%s: %d rows, %s\n", fs.Arg(1), len(parsed.Rows), parsed.Encoding)
	bar := progressBar(e.stderr, "导入 importing")
	rep, err := app.db.ImportMembers(ctx, parsed.Rows, bar)
	fmt.Fprintln(e.stderr)
	if err != nil {
		var lines []string
		if rows := rowErrors(err); len(rows) > 0 {
			for _, re := range rows {
				lines = append(lines, fmt.Sprintf("%s:%d: %s", fs.Arg(1), re.Line, re.Message))
			}
			fmt.Fprintln(e.stderr, strings.Join(lines, "\n"))
			fmt.Fprintf(e.stderr, "tacklegate members import: %d rows refused; nothing was imported\n", len(rows))
			return exitFail
		}
		return fail(e, "members import", err)
	}
	fmt.Fprintf(e.stdout, "imported %d rows in %s: %d created, %d updated, %d unchanged\n",
		len(parsed.Rows), time.Since(start).Round(time.Millisecond), rep.Created, rep.Updated, rep.Unchanged)
	return exitOK
}

// progressBar draws "label [#####.....] done/total" on one line.
func progressBar(w io.Writer, label string) func(done, total int) {
	last := -1
	return func(done, total int) {
		if total == 0 {
			return
		}
		pct := done * 100 / total
		if pct == last {
			return
		}
		last = pct
		filled := pct / 5
		fmt.Fprintf(w, "\r%s [%s%s] %d/%d", label, strings.Repeat("#", filled), strings.Repeat(".", 20-filled), done, total)
	}
}

// rowErrors returns the rows the database refused, if that is the error.
func rowErrors(err error) []store.RowError {
	var ie *store.ImportErrors
	if errors.As(err, &ie) {
		return ie.Rows
	}
	return nil
}
