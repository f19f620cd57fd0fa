package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

var _ rental.CatalogStore = (*DB)(nil)

type itemRow struct {
	ID          int64 `gorm:"primaryKey"`
	Category    string
	Name        string
	Description string
	PricePerDay int64
	Deposit     int64
	Photos      string // JSON array
	Active      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (itemRow) TableName() string { return "items" }

type itemTagRow struct {
	ItemID   int64  `gorm:"primaryKey"`
	Tag      string `gorm:"primaryKey"`
	Position int
}

func (itemTagRow) TableName() string { return "item_tags" }

type unitRow struct {
	ID        int64 `gorm:"primaryKey"`
	ItemID    int64
	Serial    string
	Condition string
	Status    string
	Notes     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (unitRow) TableName() string { return "units" }

func (r unitRow) unit() rental.Unit {
	return rental.Unit{
		ID: rental.UnitID(r.ID), ItemID: rental.ItemID(r.ItemID), Serial: r.Serial,
		Condition: rental.Condition(r.Condition), Status: rental.UnitStatus(r.Status), Notes: r.Notes,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type shopSettingsRow struct {
	ID                    int `gorm:"primaryKey"`
	CleaningBufferSeconds int64
	PaymentTimeoutSeconds int64
	LateFeePerDay         int64
	GracePeriodSeconds    int64
	DepositWaived         string // JSON array of tiers
	OpeningHours          string // JSON
	UpdatedAt             time.Time
}

func (shopSettingsRow) TableName() string { return "shop_settings" }

func itemToRow(it *rental.Item) (itemRow, error) {
	photos := it.Photos
	if photos == nil {
		photos = []string{}
	}
	b, err := json.Marshal(photos)
	return itemRow{
		ID: int64(it.ID), Category: string(it.Category), Name: it.Name, Description: it.Description,
		PricePerDay: int64(it.PricePerDay), Deposit: int64(it.Deposit), Photos: string(b), Active: it.Active,
		CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
	}, err
}

func (r itemRow) item(tags []string) (rental.Item, error) {
	it := rental.Item{
		ID: rental.ItemID(r.ID), Category: rental.Category(r.Category), Name: r.Name, Description: r.Description,
		Tags: tags, PricePerDay: rental.Fen(r.PricePerDay), Deposit: rental.Fen(r.Deposit), Active: r.Active,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	err := json.Unmarshal([]byte(r.Photos), &it.Photos)
	return it, err
}

func writeTags(tx *gorm.DB, id int64, tags []string) error {
	if err := tx.Where("item_id = ?", id).Delete(&itemTagRow{}).Error; err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	rows := make([]itemTagRow, len(tags))
	for i, t := range tags {
		rows[i] = itemTagRow{ItemID: id, Tag: t, Position: i}
	}
	return tx.Create(&rows).Error
}

// CreateItem stores a new item with its tags; it.ID and times are set.
func (db *DB) CreateItem(ctx context.Context, it *rental.Item) error {
	const op = "store.CreateItem"
	if err := it.Validate(); err != nil {
		return err
	}
	now := time.Now().UTC()
	it.CreatedAt, it.UpdatedAt = now, now
	row, err := itemToRow(it)
	if err != nil {
		return rental.Wrap(op, rental.KindInternal, "", err)
	}
	row.ID = 0
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return writeTags(tx, row.ID, it.Tags)
	})
	if err != nil {
		return rentalErr(op, err)
	}
	it.ID = rental.ItemID(row.ID)
	return nil
}

// UpdateItem replaces an item's fields and tags.
func (db *DB) UpdateItem(ctx context.Context, it *rental.Item) error {
	const op = "store.UpdateItem"
	if err := it.Validate(); err != nil {
		return err
	}
	it.UpdatedAt = time.Now().UTC()
	row, err := itemToRow(it)
	if err != nil {
		return rental.Wrap(op, rental.KindInternal, "", err)
	}
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&itemRow{}).Where("id = ?", it.ID).Updates(map[string]any{
			"category": row.Category, "name": row.Name, "description": row.Description,
			"price_per_day": row.PricePerDay, "deposit": row.Deposit, "photos": row.Photos,
			"active": row.Active, "updated_at": row.UpdatedAt,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return rental.Errorf(op, rental.KindNotFound, "商品不存在 (no such item): %d", it.ID)
		}
		return writeTags(tx, int64(it.ID), it.Tags)
	})
	return rentalErr(op, err)
}

// Item reads one item, hidden or not.
func (db *DB) Item(ctx context.Context, id rental.ItemID) (rental.Item, error) {
	const op = "store.Item"
	items, err := db.items(ctx, db.Gorm.WithContext(ctx).Where("id = ?", id))
	if err != nil {
		return rental.Item{}, rentalErr(op, err)
	}
	if len(items) == 0 {
		return rental.Item{}, rental.Errorf(op, rental.KindNotFound, "商品不存在 (no such item): %d", id)
	}
	return items[0], nil
}

// Items lists items by id after f.After.
func (db *DB) Items(ctx context.Context, f rental.ItemFilter) ([]rental.Item, error) {
	const op = "store.Items"
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	q := db.Gorm.WithContext(ctx).Where("id > ?", f.After).Order("id").Limit(limit)
	if f.Category != "" {
		q = q.Where("category = ?", f.Category)
	}
	if !f.IncludeInactive {
		q = q.Where("active = ?", true)
	}
	if f.Tag != "" {
		q = q.Where("EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = items.id AND t.tag = ?)", f.Tag)
	}
	items, err := db.items(ctx, q)
	return items, rentalErr(op, err)
}

func (db *DB) items(ctx context.Context, q *gorm.DB) ([]rental.Item, error) {
	var rows []itemRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var tagRows []itemTagRow
	if err := db.Gorm.WithContext(ctx).Where("item_id IN ?", ids).Order("item_id, position").Find(&tagRows).Error; err != nil {
		return nil, err
	}
	tags := map[int64][]string{}
	for _, t := range tagRows {
		tags[t.ItemID] = append(tags[t.ItemID], t.Tag)
	}
	out := make([]rental.Item, len(rows))
	for i, r := range rows {
		it, err := r.item(tags[r.ID])
		if err != nil {
			return nil, err
		}
		out[i] = it
	}
	return out, nil
}

// CreateUnit stores a new unit of an existing item; the serial is unique.
func (db *DB) CreateUnit(ctx context.Context, u *rental.Unit) error {
	const op = "store.CreateUnit"
	if err := u.Validate(); err != nil {
		return err
	}
	if _, err := db.Item(ctx, u.ItemID); err != nil {
		return err
	}
	now := time.Now().UTC()
	row := unitRow{ItemID: int64(u.ItemID), Serial: u.Serial, Condition: string(u.Condition), Status: string(u.Status), Notes: u.Notes, CreatedAt: now, UpdatedAt: now}
	if err := db.Gorm.WithContext(ctx).Create(&row).Error; err != nil {
		if isDuplicateKey(err) {
			return rental.Wrap(op, rental.KindConflict, "编号 "+u.Serial+" 已存在 (serial already in use)", err)
		}
		return rentalErr(op, err)
	}
	u.ID, u.CreatedAt, u.UpdatedAt = rental.UnitID(row.ID), now, now
	return nil
}

// UpdateUnit changes a unit's serial, condition, status and notes. A unit
// never moves to another item: its reservations were made as that item.
func (db *DB) UpdateUnit(ctx context.Context, u *rental.Unit) error {
	const op = "store.UpdateUnit"
	if err := u.Validate(); err != nil {
		return err
	}
	u.UpdatedAt = time.Now().UTC()
	res := db.Gorm.WithContext(ctx).Model(&unitRow{}).Where("id = ? AND item_id = ?", u.ID, u.ItemID).Updates(map[string]any{
		"serial": u.Serial, "condition": string(u.Condition), "status": string(u.Status), "notes": u.Notes, "updated_at": u.UpdatedAt,
	})
	if res.Error != nil {
		if isDuplicateKey(res.Error) {
			return rental.Wrap(op, rental.KindConflict, "编号 "+u.Serial+" 已存在 (serial already in use)", res.Error)
		}
		return rentalErr(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf(op, rental.KindNotFound, "装备 %d 不存在或不属于商品 %d (no such unit of this item)", u.ID, u.ItemID)
	}
	return nil
}

// Units lists an item's units by id.
func (db *DB) Units(ctx context.Context, item rental.ItemID) ([]rental.Unit, error) {
	var rows []unitRow
	if err := db.Gorm.WithContext(ctx).Where("item_id = ?", item).Order("id").Find(&rows).Error; err != nil {
		return nil, rentalErr("store.Units", err)
	}
	out := make([]rental.Unit, len(rows))
	for i, r := range rows {
		out[i] = r.unit()
	}
	return out, nil
}

// ShopSettings returns the saved settings or the defaults.
func (db *DB) ShopSettings(ctx context.Context) (rental.ShopSettings, error) {
	return shopSettingsOn(db.Gorm.WithContext(ctx))
}

// ShopSettings reads the shop's settings inside the bridge's transaction
// (a read on another connection could wait for one while this transaction
// holds the write lock and the pool's other connections wait for it).
func (tx *BridgeTx) ShopSettings() (rental.ShopSettings, error) { return shopSettingsOn(tx.g) }

func shopSettingsOn(g *gorm.DB) (rental.ShopSettings, error) {
	const op = "store.ShopSettings"
	var row shopSettingsRow
	err := g.Where("id = 1").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return rental.DefaultShopSettings(), nil
	}
	if err != nil {
		return rental.ShopSettings{}, rentalErr(op, err)
	}
	s := rental.ShopSettings{
		CleaningBuffer: time.Duration(row.CleaningBufferSeconds) * time.Second,
		PaymentTimeout: time.Duration(row.PaymentTimeoutSeconds) * time.Second,
		LateFeePerDay:  rental.Fen(row.LateFeePerDay),
		GracePeriod:    time.Duration(row.GracePeriodSeconds) * time.Second,
		DepositWaived:  map[rental.Tier]bool{},
		UpdatedAt:      row.UpdatedAt.UTC(),
	}
	var tiers []rental.Tier
	if err := json.Unmarshal([]byte(row.DepositWaived), &tiers); err != nil {
		return rental.ShopSettings{}, rental.Wrap(op, rental.KindInternal, "", err)
	}
	for _, t := range tiers {
		s.DepositWaived[t] = true
	}
	if err := json.Unmarshal([]byte(row.OpeningHours), &s.Hours); err != nil {
		return rental.ShopSettings{}, rental.Wrap(op, rental.KindInternal, "", err)
	}
	return s, nil
}

// SaveShopSettings validates and stores the owner's settings. Durations
// are kept in whole seconds.
func (db *DB) SaveShopSettings(ctx context.Context, s rental.ShopSettings) error {
	const op = "store.SaveShopSettings"
	if err := s.Validate(); err != nil {
		return err
	}
	tiers := []rental.Tier{}
	for t, waived := range s.DepositWaived {
		if waived {
			tiers = append(tiers, t)
		}
	}
	waived, _ := json.Marshal(tiers)
	hours, _ := json.Marshal(s.Hours)
	row := shopSettingsRow{
		ID: 1, CleaningBufferSeconds: int64(s.CleaningBuffer / time.Second), PaymentTimeoutSeconds: int64(s.PaymentTimeout / time.Second),
		LateFeePerDay: int64(s.LateFeePerDay), GracePeriodSeconds: int64(s.GracePeriod / time.Second),
		DepositWaived: string(waived), OpeningHours: string(hours), UpdatedAt: time.Now().UTC(),
	}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"cleaning_buffer_seconds", "payment_timeout_seconds", "late_fee_per_day",
			"grace_period_seconds", "deposit_waived", "opening_hours", "updated_at"}),
	}).Create(&row).Error
	return rentalErr(op, err)
}
