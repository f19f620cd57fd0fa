package gateway

import (
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The owner's follow-up of calls out and payments: the outbox's dead-letter
// list (webhooks, refunds that gave up) with replay, and the payment
// anomalies reconciliation works from.

func (h *rentalHandlers) deadLetters(c *fiber.Ctx) error {
	after, err := cursorParam(c)
	if err != nil {
		return err
	}
	limit := limitParam(c, 50, 200)
	items, err := h.r.DB.DeadOutboxPage(c.UserContext(), c.Query("kind"), after, limit)
	if err != nil {
		return err
	}
	for i := range items {
		if items[i].DeadAt != nil {
			t := shanghaiTime(*items[i].DeadAt)
			items[i].DeadAt = &t
		}
		items[i].CreatedAt = shanghaiTime(items[i].CreatedAt)
	}
	next := ""
	if len(items) == limit {
		next = strconv.FormatInt(items[len(items)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"dead": items, "next_cursor": next})
}

func (h *rentalHandlers) replay(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	if err := h.r.DB.ReplayOutbox(c.UserContext(), id); err != nil {
		return err
	}
	Logger(c).Info("outbox message replayed", "outbox", id, "by", caller(c).Subject)
	return c.JSON(fiber.Map{"replayed": id})
}

// anomalies lists payment anomalies, newest last: ?from=&to= (days, Asia/
// Shanghai; default the last 30 days), ?status=open (default), resolved or
// all, cursor paging.
func (h *rentalHandlers) anomalies(c *fiber.Ctx) error {
	after, err := cursorParam(c)
	if err != nil {
		return err
	}
	from := h.r.now().Add(-30 * 24 * time.Hour)
	var to time.Time
	if v := c.Query("from"); v != "" {
		d, err := rental.ParseDate(v)
		if err != nil {
			return err
		}
		from = d.Start()
	}
	if v := c.Query("to"); v != "" {
		d, err := rental.ParseDate(v)
		if err != nil {
			return err
		}
		to = d.Start()
	}
	limit := limitParam(c, 50, 200)
	list, err := h.r.DB.ListPayAnomalies(c.UserContext(), store.AnomalyFilter{From: from, To: to, After: after, Limit: limit, Status: c.Query("status")})
	if err != nil {
		return err
	}
	for i := range list {
		showAnomaly(&list[i])
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"anomalies": list, "next_cursor": next})
}

// showAnomaly shows an anomaly's times in the shop's zone.
func showAnomaly(a *store.PayAnomaly) {
	a.CreatedAt = shanghaiTime(a.CreatedAt)
	if a.ResolvedAt != nil {
		t := shanghaiTime(*a.ResolvedAt)
		a.ResolvedAt = &t
	}
}

// resolveAnomaly is the owner marking an anomaly dealt with:
// {"note": "…"} says why; who and when are recorded with it, once.
func (h *rentalHandlers) resolveAnomaly(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	var in struct {
		Note string `json:"note"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	who := string(actor(caller(c)))
	a, err := h.r.DB.ResolvePayAnomaly(c.UserContext(), id, who, in.Note, h.r.now())
	if err != nil {
		return err
	}
	Logger(c).Info("payment anomaly resolved", "anomaly", a.ID, "kind", a.Kind, "by", who)
	showAnomaly(&a)
	return c.JSON(fiber.Map{"anomaly": a})
}

// maxBillDays bounds one bill comparison from the owner console: each day
// is one or two requests to WeChat Pay, made while the owner waits.
const maxBillDays = 31

// bills compares days with WeChat Pay's trade bills for the owner console:
// ?from=&to= (days, Asia/Shanghai; default yesterday, at most 31 days).
// The same comparison as `tacklegate reconcile`'s bill step.
func (h *rentalHandlers) bills(c *fiber.Ctx) error {
	const op = "owner.bills"
	if h.r.Pay == nil {
		return rental.Errorf(op, rental.KindUnavailable, "微信支付未开通 (WeChat Pay is off)")
	}
	yesterday := rental.DateOf(h.r.now()).AddDays(-1)
	from, to := yesterday, yesterday
	for _, p := range []struct {
		name string
		into *rental.Date
	}{{"from", &from}, {"to", &to}} {
		if v := c.Query(p.name); v != "" {
			d, err := rental.ParseDate(v)
			if err != nil {
				return err
			}
			*p.into = d
		}
	}
	if c.Query("to") == "" && c.Query("from") != "" {
		to = from
	}
	if to.Before(from) {
		return rental.Errorf(op, rental.KindInvalid, "结束日期早于开始日期 (to is before from)")
	}
	if from.AddDays(maxBillDays - 1).Before(to) {
		return rental.Errorf(op, rental.KindInvalid, "一次最多对账 %d 天 (at most %d days at a time)", maxBillDays, maxBillDays)
	}
	var rep ReconcileReport
	if err := h.r.ReconcileBills(c.UserContext(), from, to, &rep); err != nil {
		var re *rental.Error
		if errors.As(err, &re) {
			return err // the database, or WeChat Pay switched off
		}
		return payUpstream(op, err) // fetching or reading a bill
	}
	mismatches := rep.Mismatches
	if mismatches == nil {
		mismatches = []Mismatch{}
	}
	return c.JSON(fiber.Map{"from": from, "to": to, "days": rep.BillDays, "mismatches": mismatches})
}
