package gateway

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// The catalog: browsing and availability for everyone, and the owner's
// items, units and shop settings.

func (h *rentalHandlers) categories(c *fiber.Ctx) error {
	type cat struct {
		ID    rental.Category `json:"id"`
		Label string          `json:"label"`
	}
	var out []cat
	for _, k := range rental.Categories() {
		out = append(out, cat{k, k.Label()})
	}
	return c.JSON(fiber.Map{"categories": out})
}

// itemFilter reads ?category=&tag=&cursor=&limit=.
func itemFilter(c *fiber.Ctx, includeInactive bool) (rental.ItemFilter, error) {
	after, err := cursorParam(c)
	if err != nil {
		return rental.ItemFilter{}, err
	}
	f := rental.ItemFilter{
		Category: rental.Category(c.Query("category")), Tag: strings.TrimSpace(c.Query("tag")),
		IncludeInactive: includeInactive, After: rental.ItemID(after), Limit: limitParam(c, 20, 100),
	}
	if f.Category != "" && !f.Category.Valid() {
		return f, rental.Errorf("catalog.items", rental.KindInvalid, "未知的类别 (unknown category) %q", c.Query("category"))
	}
	return f, nil
}

func (h *rentalHandlers) items(c *fiber.Ctx, includeInactive bool) error {
	f, err := itemFilter(c, includeInactive)
	if err != nil {
		return err
	}
	items, err := h.r.DB.Items(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := make([]itemView, len(items))
	for i, it := range items {
		out[i] = viewItem(it)
	}
	next := ""
	if len(items) == f.Limit {
		next = strconv.FormatInt(int64(items[len(items)-1].ID), 10)
	}
	return c.JSON(fiber.Map{"items": out, "next_cursor": next})
}

func (h *rentalHandlers) listItems(c *fiber.Ctx) error  { return h.items(c, false) }
func (h *rentalHandlers) ownerItems(c *fiber.Ctx) error { return h.items(c, true) }

// activeItem loads an item customers may see: hidden items do not exist
// for them.
func (h *rentalHandlers) activeItem(c *fiber.Ctx) (rental.Item, error) {
	id, err := paramID(c)
	if err != nil {
		return rental.Item{}, err
	}
	it, err := h.r.DB.Item(c.UserContext(), rental.ItemID(id))
	if err != nil {
		return it, err
	}
	if !it.Active {
		return it, rental.Errorf("catalog.item", rental.KindNotFound, "商品不存在或已下架 (no such item)")
	}
	return it, nil
}

func (h *rentalHandlers) getItem(c *fiber.Ctx) error {
	it, err := h.activeItem(c)
	if err != nil {
		return err
	}
	units, err := h.r.DB.Units(c.UserContext(), it.ID)
	if err != nil {
		return err
	}
	n := 0
	for _, u := range units {
		if u.Rentable() {
			n++
		}
	}
	v := viewItem(it)
	v.Units = &n
	return c.JSON(fiber.Map{"item": v})
}

// availability answers ?from=&to= (the day the gear comes back): how many
// units are free for the whole period, and per day for a date picker.
func (h *rentalHandlers) availability(c *fiber.Ctx) error {
	it, err := h.activeItem(c)
	if err != nil {
		return err
	}
	p, err := rental.ParsePeriod(c.Query("from"), c.Query("to"))
	if err != nil {
		return err
	}
	a, err := h.r.shop.Availability(c.UserContext(), it.ID, p)
	if err != nil {
		return err
	}
	type day struct {
		Date rental.Date `json:"date"`
		Free int         `json:"free"`
	}
	days := make([]day, len(a.Days))
	for i, d := range a.Days {
		days[i] = day{d.Date, d.Free}
	}
	return c.JSON(fiber.Map{
		"item_id": it.ID, "period": periodView{From: p.From, To: p.To, Days: p.Days()},
		"units": a.Units, "free": a.Free, "days": days,
	})
}

// itemInput is an item as the owner writes it; absent fields keep their
// value on update.
type itemInput struct {
	Category    *rental.Category `json:"category"`
	Name        *string          `json:"name"`
	Description *string          `json:"description"`
	Tags        *[]string        `json:"tags"`
	PricePerDay *rental.Fen      `json:"price_per_day"`
	Deposit     *rental.Fen      `json:"deposit"`
	Photos      *[]string        `json:"photos"`
	Active      *bool            `json:"active"`
}

func (in itemInput) apply(it *rental.Item) {
	patch(&it.Category, in.Category)
	patch(&it.Name, in.Name)
	patch(&it.Description, in.Description)
	patch(&it.Tags, in.Tags)
	patch(&it.PricePerDay, in.PricePerDay)
	patch(&it.Deposit, in.Deposit)
	patch(&it.Photos, in.Photos)
	patch(&it.Active, in.Active)
}

func (h *rentalHandlers) createItem(c *fiber.Ctx) error {
	var in itemInput
	if err := body(c, &in); err != nil {
		return err
	}
	it := rental.Item{Active: true}
	in.apply(&it)
	if err := h.r.DB.CreateItem(c.UserContext(), &it); err != nil {
		return err
	}
	h.r.log.Info("item created", "item", it.ID, "by", caller(c).Subject)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"item": viewItem(it)})
}

func (h *rentalHandlers) ownerItemOf(c *fiber.Ctx) (rental.Item, error) {
	id, err := paramID(c)
	if err != nil {
		return rental.Item{}, err
	}
	return h.r.DB.Item(c.UserContext(), rental.ItemID(id))
}

func (h *rentalHandlers) ownerItem(c *fiber.Ctx) error {
	it, err := h.ownerItemOf(c)
	if err != nil {
		return err
	}
	units, err := h.r.DB.Units(c.UserContext(), it.ID)
	if err != nil {
		return err
	}
	uv := make([]unitView, len(units))
	for i, u := range units {
		uv[i] = viewUnit(u)
	}
	return c.JSON(fiber.Map{"item": viewItem(it), "units": uv})
}

func (h *rentalHandlers) updateItem(c *fiber.Ctx) error {
	it, err := h.ownerItemOf(c)
	if err != nil {
		return err
	}
	var in itemInput
	if err := body(c, &in); err != nil {
		return err
	}
	in.apply(&it)
	if err := h.r.DB.UpdateItem(c.UserContext(), &it); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"item": viewItem(it)})
}

// deactivateItem hides an item: it is never deleted, since orders name it.
func (h *rentalHandlers) deactivateItem(c *fiber.Ctx) error {
	it, err := h.ownerItemOf(c)
	if err != nil {
		return err
	}
	it.Active = false
	if err := h.r.DB.UpdateItem(c.UserContext(), &it); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"item": viewItem(it)})
}

func (h *rentalHandlers) listUnits(c *fiber.Ctx) error {
	it, err := h.ownerItemOf(c)
	if err != nil {
		return err
	}
	units, err := h.r.DB.Units(c.UserContext(), it.ID)
	if err != nil {
		return err
	}
	out := make([]unitView, len(units))
	for i, u := range units {
		out[i] = viewUnit(u)
	}
	return c.JSON(fiber.Map{"units": out})
}

type unitInput struct {
	Serial    *string            `json:"serial"`
	Condition *rental.Condition  `json:"condition"`
	Status    *rental.UnitStatus `json:"status"`
	Notes     *string            `json:"notes"`
}

func (in unitInput) apply(u *rental.Unit) {
	patch(&u.Serial, in.Serial)
	patch(&u.Condition, in.Condition)
	patch(&u.Status, in.Status)
	patch(&u.Notes, in.Notes)
}

func (h *rentalHandlers) createUnit(c *fiber.Ctx) error {
	it, err := h.ownerItemOf(c)
	if err != nil {
		return err
	}
	var in unitInput
	if err := body(c, &in); err != nil {
		return err
	}
	u := rental.Unit{ItemID: it.ID, Condition: rental.ConditionGood, Status: rental.UnitAvailable}
	in.apply(&u)
	if err := h.r.DB.CreateUnit(c.UserContext(), &u); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"unit": viewUnit(u)})
}

func (h *rentalHandlers) unitOf(c *fiber.Ctx) (rental.Unit, error) {
	id, err := paramID(c)
	if err != nil {
		return rental.Unit{}, err
	}
	return h.r.DB.Unit(c.UserContext(), rental.UnitID(id))
}

func (h *rentalHandlers) updateUnit(c *fiber.Ctx) error {
	u, err := h.unitOf(c)
	if err != nil {
		return err
	}
	var in unitInput
	if err := body(c, &in); err != nil {
		return err
	}
	in.apply(&u)
	if err := h.r.DB.UpdateUnit(c.UserContext(), &u); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"unit": viewUnit(u)})
}

// retireUnit takes a unit out of service for good; its history stays.
// Reservations it already holds are kept: staff hand out another unit.
func (h *rentalHandlers) retireUnit(c *fiber.Ctx) error {
	u, err := h.unitOf(c)
	if err != nil {
		return err
	}
	u.Status = rental.UnitRetired
	if err := h.r.DB.UpdateUnit(c.UserContext(), &u); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"unit": viewUnit(u)})
}

func (h *rentalHandlers) getSettings(c *fiber.Ctx) error {
	s, err := h.r.DB.ShopSettings(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"settings": viewSettings(s)})
}

// putSettings changes the settings given and keeps the others. Orders
// already placed keep the terms they were placed with.
func (h *rentalHandlers) putSettings(c *fiber.Ctx) error {
	var in struct {
		CleaningBufferMinutes *int                 `json:"cleaning_buffer_minutes"`
		PaymentTimeoutMinutes *int                 `json:"payment_timeout_minutes"`
		LateFeePerDay         *rental.Fen          `json:"late_fee_per_day"`
		GracePeriodMinutes    *int                 `json:"grace_period_minutes"`
		DepositWaived         *[]rental.Tier       `json:"deposit_waived"`
		Hours                 *rental.OpeningHours `json:"hours"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	s, err := h.r.DB.ShopSettings(c.UserContext())
	if err != nil {
		return err
	}
	minutes := func(p *int, d *time.Duration) {
		if p != nil {
			*d = time.Duration(*p) * time.Minute
		}
	}
	minutes(in.CleaningBufferMinutes, &s.CleaningBuffer)
	minutes(in.PaymentTimeoutMinutes, &s.PaymentTimeout)
	minutes(in.GracePeriodMinutes, &s.GracePeriod)
	if in.LateFeePerDay != nil {
		s.LateFeePerDay = *in.LateFeePerDay
	}
	if in.DepositWaived != nil {
		s.DepositWaived = map[rental.Tier]bool{}
		for _, t := range *in.DepositWaived {
			if t = rental.Tier(strings.TrimSpace(string(t))); t != "" {
				s.DepositWaived[t] = true
			}
		}
	}
	if in.Hours != nil {
		s.Hours = *in.Hours
	}
	if err := h.r.DB.SaveShopSettings(c.UserContext(), s); err != nil {
		return err
	}
	saved, err := h.r.DB.ShopSettings(c.UserContext())
	if err != nil {
		return err
	}
	h.r.log.Info("shop settings changed", "by", caller(c).Subject)
	return c.JSON(fiber.Map{"settings": viewSettings(saved)})
}

// patch sets *dst to *v when the request sent the field (v not nil): the
// owner's edits change only what they send.
func patch[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
