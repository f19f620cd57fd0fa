package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/rental"
)

// exitMismatch is reconcile's exit status when it found differences: not a
// failure to run, but something for a person to look at.
const exitMismatch = 3

func cmdReconcile(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "reconcile", "reconcile [--config FILE] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]",
		"Compares the payments and refunds recorded here with WeChat Pay's own records: every payment attempt made\n"+
			"from --from through --to (days in Asia/Shanghai; default the last 30 days through today) is queried by\n"+
			"out_trade_no, and each of its refunds by out_refund_no. Prints every mismatch — paid at WeChat Pay but not\n"+
			"here, paid here but not there, amounts that differ, refunds missing or not recorded, money owed with no\n"+
			"refund under way — and the anomalies recorded in the period (notifications for unknown orders, wrong\n"+
			"amounts, appids or merchants) that the owner has not marked resolved. Then each day's trade bill (交易账单) is downloaded, its SHA1 checked, and\n"+
			"compared line by line: payments and refunds on the bill that are unknown here, ours missing from the bill,\n"+
			"amounts or states that differ; a day whose bill WeChat Pay has not made yet (today's) is listed as such.\n"+
			"It changes nothing.\n\n"+
			"Exit status: 0 when everything matches, 3 when there are mismatches, 1 when the comparison could not be\n"+
			"made (database or WeChat Pay unreachable), 2 for a wrong command line or configuration.")
	cfgPath := fs.String("config", "", "YAML file with settings")
	fromFlag := fs.String("from", "", "first day of payment attempts to check (default: 30 days ago)")
	toFlag := fs.String("to", "", "last day of payment attempts to check, included (default: today)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	noBill := fs.Bool("no-bill", false, "skip the trade bills; only query each attempt")
	showResolved := fs.Bool("resolved", false, "also list the anomalies the owner resolved (who, when, why); open ones are always listed")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "tacklegate reconcile: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	today := rental.DateOf(time.Now())
	from, to := today.AddDays(-30), today
	for _, f := range []struct {
		val  string
		into *rental.Date
		name string
	}{{*fromFlag, &from, "--from"}, {*toFlag, &to, "--to"}} {
		if f.val == "" {
			continue
		}
		d, err := rental.ParseDate(f.val)
		if err != nil {
			fmt.Fprintf(e.stderr, "tacklegate reconcile: %s %s\n", f.name, rental.ErrorMessage(err))
			return exitUsage
		}
		*f.into = d
	}
	if to.Before(from) {
		fmt.Fprintln(e.stderr, "tacklegate reconcile: --to is before --from")
		return exitUsage
	}
	cfg, ok := loadConfig(e, *cfgPath, e.getenv)
	if !ok {
		return exitUsage
	}
	if !cfg.WeChatPay.Enabled() {
		fmt.Fprintln(e.stderr, "tacklegate reconcile: WeChat Pay is not configured (TACKLEGATE_WECHATPAY_*): there is nothing to compare with")
		return exitUsage
	}
	pay, err := newPayClient(cfg, nil)
	if err != nil {
		fmt.Fprintln(e.stderr, "tacklegate: invalid configuration:\n  "+rental.ErrorMessage(err))
		return exitUsage
	}
	logger := newLogger(cfg, e.stderr)
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger})
	if err != nil {
		return fail(e, "reconcile", err)
	}
	defer db.Close()
	if n, err := db.Pending(ctx); err != nil {
		return fail(e, "reconcile", err)
	} else if n > 0 {
		fmt.Fprintf(e.stderr, "tacklegate reconcile: the database schema is %d migration(s) behind; run `tacklegate migrate up`\n", n)
		return exitFail
	}
	r := &gateway.Rental{DB: db, Pay: pay, AppID: cfg.WeChat.AppID, Logger: logger}
	start, end := from.Start(), to.AddDays(1).Start()
	fmt.Fprintf(e.stderr, "reconciling payment attempts of %s – %s (Asia/Shanghai) with WeChat Pay…\n", from, to)
	last := time.Now()
	rep, err := r.Reconcile(ctx, start, end, func(orders, payments int) {
		if time.Since(last) >= time.Second {
			fmt.Fprintf(e.stderr, "  checked %d orders, %d payment attempts…\n", orders, payments)
			last = time.Now()
		}
	})
	if err != nil {
		return fail(e, "reconcile", err)
	}
	if !*noBill {
		fmt.Fprintf(e.stderr, "comparing with WeChat Pay's trade bills…\n")
		if err := r.ReconcileBills(ctx, from, to, &rep); err != nil {
			return fail(e, "reconcile: trade bills", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct { //nolint:errcheck // stdout
			From       rental.Date        `json:"from"`
			To         rental.Date        `json:"to"`
			Orders     int                `json:"orders"`
			Payments   int                `json:"payments"`
			Refunds    int                `json:"refunds"`
			Mismatches []gateway.Mismatch `json:"mismatches"`
			Anomalies  []store.PayAnomaly `json:"anomalies"`
			BillDays   []gateway.BillDay  `json:"bill_days"`
			Resolved   []store.PayAnomaly `json:"resolved_anomalies,omitempty"`
		}{from, to, rep.Orders, rep.Payments, rep.Refunds, nonNil(rep.Mismatches), nonNil(rep.Anomalies), nonNil(rep.BillDays), resolvedIf(*showResolved, rep.Resolved)})
	} else {
		printReconcile(e, from, to, rep, *showResolved)
	}
	if len(rep.Mismatches) > 0 {
		return exitMismatch
	}
	return exitOK
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// resolvedIf is the resolved anomalies when asked for (a non-nil empty
// list then), nil otherwise.
func resolvedIf(show bool, list []store.PayAnomaly) []store.PayAnomaly {
	if !show {
		return nil
	}
	return nonNil(list)
}

func printReconcile(e env, from, to rental.Date, rep gateway.ReconcileReport, showResolved bool) {
	out := e.stdout
	fmt.Fprintf(out, "对账 reconciliation %s – %s: %d orders, %d payment attempts, %d refunds checked with WeChat Pay\n",
		from, to, rep.Orders, rep.Payments, rep.Refunds)
	quiet := 0
	for _, d := range rep.BillDays {
		switch {
		case d.Status != gateway.BillCompared:
			fmt.Fprintf(out, "  账单 bill %s: not made yet at WeChat Pay; run again tomorrow after 10:00\n", d.Day)
		case d.Lines == 0 && d.HerePaid == 0 && d.HereRefunded == 0:
			quiet++
		default:
			explained := ""
			if d.Explained > 0 {
				explained = fmt.Sprintf(" (%d line(s) unknown here, accounted for by resolved anomalies)", d.Explained)
			}
			fmt.Fprintf(out, "  账单 bill %s: %d line(s); WeChat Pay paid %s refunded %s | here paid %s refunded %s%s\n",
				d.Day, d.Lines, d.BillPaid, d.BillRefunded, d.HerePaid, d.HereRefunded, explained)
		}
	}
	if quiet > 0 {
		fmt.Fprintf(out, "  账单 bills of %d more day(s): no trades on either side\n", quiet)
	}
	if len(rep.Mismatches) == 0 {
		fmt.Fprintln(out, "一致 everything matches")
	} else {
		fmt.Fprintf(out, "不一致 %d mismatch(es):\n", len(rep.Mismatches))
		for _, m := range rep.Mismatches {
			var b strings.Builder
			fmt.Fprintf(&b, "  %-32s", m.Kind)
			if m.Day != "" {
				fmt.Fprintf(&b, " bill %s", m.Day)
			}
			if m.OrderNo != "" {
				fmt.Fprintf(&b, " order %s (#%d)", m.OrderNo, m.OrderID)
			} else if m.OrderID > 0 {
				fmt.Fprintf(&b, " order #%d", m.OrderID)
			}
			if m.OutTradeNo != "" {
				fmt.Fprintf(&b, " out_trade_no %s", m.OutTradeNo)
			}
			if m.OutRefundNo != "" {
				fmt.Fprintf(&b, " out_refund_no %s", m.OutRefundNo)
			}
			fmt.Fprintf(&b, "\n      here: %s | WeChat Pay: %s", m.Here, m.There)
			if m.Detail != "" {
				fmt.Fprintf(&b, " | %s", m.Detail)
			}
			fmt.Fprintln(out, b.String())
		}
	}
	if n := len(rep.Resolved); n > 0 && !showResolved {
		fmt.Fprintf(out, "已处理 %d anomaly(ies) resolved by the owner (--resolved lists them)\n", n)
	} else if showResolved {
		fmt.Fprintf(out, "已处理 %d anomaly(ies) resolved by the owner:\n", n)
		for _, a := range rep.Resolved {
			fmt.Fprintf(out, "  #%d %-18s out_trade_no %s amount %s: resolved %s by %s: %s\n", a.ID, a.Kind, a.OutTradeNo, a.Amount,
				a.ResolvedAt.In(rental.Shanghai()).Format("2006-01-02 15:04"), a.ResolvedBy, a.Resolution)
		}
	}
	if len(rep.Anomalies) > 0 {
		fmt.Fprintf(out, "记录的异常 %d open anomaly(ies) recorded in the period:\n", len(rep.Anomalies))
		for _, a := range rep.Anomalies {
			fmt.Fprintf(out, "  #%d %s %-18s order #%d out_trade_no %s out_refund_no %s amount %s expected %s %s\n",
				a.ID, a.CreatedAt.In(rental.Shanghai()).Format("2006-01-02 15:04"), a.Kind, a.OrderID, a.OutTradeNo, a.OutRefundNo, a.Amount, a.Expected, a.Detail)
		}
	}
}
