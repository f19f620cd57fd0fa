package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

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
// Shanghai; default the last 30 days), cursor paging.
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
	list, err := h.r.DB.PayAnomalies(c.UserContext(), from, to, after, limit)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].CreatedAt = shanghaiTime(list[i].CreatedAt)
	}
	next := ""
	if len(list) == limit {
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"anomalies": list, "next_cursor": next})
}
