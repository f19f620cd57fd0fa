package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// QuickHelpEntry is one quick-help button (migration 00081).
type QuickHelpEntry struct {
	ID          int64     `json:"id"`
	Title       string    `json:"title"`
	Icon        string    `json:"icon"`
	Action      string    `json:"action"` // video | voice | chat | article
	Text        string    `json:"text"`
	ArticleSlug string    `json:"article_slug"`
	Purpose     string    `json:"purpose"`
	Position    int       `json:"position"`
	Enabled     bool      `json:"enabled"`
	Uses        int64     `json:"uses"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (QuickHelpEntry) TableName() string { return "quick_help" }

// MaxQuickHelp bounds the list: it is a row of buttons on a phone, shown
// and reordered whole, so it is not paged.
const MaxQuickHelp = 30

// QuickHelpEntries lists the entries in the owner's order; enabledOnly
// leaves out the switched-off ones.
func (db *DB) QuickHelpEntries(ctx context.Context, enabledOnly bool) ([]QuickHelpEntry, error) {
	q := db.Gorm.WithContext(ctx).Order("position, id")
	if enabledOnly {
		q = q.Where("enabled = ?", true)
	}
	var out []QuickHelpEntry
	if err := q.Find(&out).Error; err != nil {
		return nil, classify("store.QuickHelpEntries", err)
	}
	return out, nil
}

// CreateQuickHelp adds an entry at the end of the list and sets its ID.
func (db *DB) CreateQuickHelp(ctx context.Context, e *QuickHelpEntry) error {
	const op = "store.CreateQuickHelp"
	return classify(op, db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n, last int64
		if err := tx.Model(&QuickHelpEntry{}).Count(&n).Error; err != nil {
			return err
		}
		if n >= MaxQuickHelp {
			return rental.Errorf(op, rental.KindConflict, "快捷求助最多 %d 个 (at most %d entries)", MaxQuickHelp, MaxQuickHelp)
		}
		if err := tx.Model(&QuickHelpEntry{}).Select("COALESCE(MAX(position), 0)").Scan(&last).Error; err != nil {
			return err
		}
		now := time.Now().UTC()
		e.ID, e.Uses, e.Position, e.CreatedAt, e.UpdatedAt = 0, 0, int(last)+1, now, now
		return tx.Create(e).Error
	}))
}

// UpdateQuickHelp replaces an entry's content (not its place or uses).
func (db *DB) UpdateQuickHelp(ctx context.Context, e *QuickHelpEntry) error {
	const op = "store.UpdateQuickHelp"
	e.UpdatedAt = time.Now().UTC()
	res := db.Gorm.WithContext(ctx).Model(&QuickHelpEntry{}).Where("id = ?", e.ID).Updates(map[string]any{
		"title": e.Title, "icon": e.Icon, "action": e.Action, "text": e.Text, "article_slug": e.ArticleSlug,
		"purpose": e.Purpose, "enabled": e.Enabled, "updated_at": e.UpdatedAt})
	if res.Error != nil {
		return classify(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf(op, rental.KindNotFound, "没有这个快捷求助 (no quick-help entry %d)", e.ID)
	}
	return classify(op, db.Gorm.WithContext(ctx).Take(e, e.ID).Error)
}

// DeleteQuickHelp removes an entry and its use history.
func (db *DB) DeleteQuickHelp(ctx context.Context, id int64) error {
	const op = "store.DeleteQuickHelp"
	return classify(op, db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("DELETE FROM quick_help_uses WHERE entry_id = ?", id).Error; err != nil {
			return err
		}
		res := tx.Delete(&QuickHelpEntry{}, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return rental.Errorf(op, rental.KindNotFound, "没有这个快捷求助 (no quick-help entry %d)", id)
		}
		return nil
	}))
}

// ReorderQuickHelp puts the entries in the order of ids, which must name
// every entry exactly once.
func (db *DB) ReorderQuickHelp(ctx context.Context, ids []int64) error {
	const op = "store.ReorderQuickHelp"
	return classify(op, db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var have []int64
		if err := tx.Model(&QuickHelpEntry{}).Pluck("id", &have).Error; err != nil {
			return err
		}
		known := map[int64]bool{}
		for _, id := range have {
			known[id] = true
		}
		seen := map[int64]bool{}
		for _, id := range ids {
			if !known[id] || seen[id] {
				return rental.Errorf(op, rental.KindInvalid, "排序须列出每个快捷求助各一次 (ids must list every entry once; %d is unknown or repeated)", id)
			}
			seen[id] = true
		}
		if len(ids) != len(have) {
			return rental.Errorf(op, rental.KindInvalid, "排序须列出全部 %d 个快捷求助 (ids must list all %d entries)", len(have), len(have))
		}
		now := time.Now().UTC()
		for i, id := range ids {
			if err := tx.Model(&QuickHelpEntry{}).Where("id = ?", id).Updates(map[string]any{"position": i + 1, "updated_at": now}).Error; err != nil {
				return err
			}
		}
		return nil
	}))
}

// UseQuickHelp counts one tap on an enabled entry (memberID 0: unknown).
func (db *DB) UseQuickHelp(ctx context.Context, id, memberID int64, at time.Time) error {
	const op = "store.UseQuickHelp"
	return classify(op, db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&QuickHelpEntry{}).Where("id = ? AND enabled = ?", id, true).UpdateColumn("uses", gorm.Expr("uses + 1"))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return rental.Errorf(op, rental.KindNotFound, "没有这个快捷求助 (no enabled quick-help entry %d)", id)
		}
		var member any
		if memberID > 0 {
			member = memberID
		}
		return tx.Exec("INSERT INTO quick_help_uses (entry_id, member_id, used_at) VALUES (?, ?, ?)", id, member, at.UTC()).Error
	}))
}

// QuickHelpUse is an entry's taps over a period.
type QuickHelpUse struct {
	ID      int64  `json:"id"`
	Title   string `json:"title"`
	Icon    string `json:"icon"`
	Action  string `json:"action"`
	Enabled bool   `json:"enabled"`
	Uses    int64  `json:"uses"`  // in the period
	Total   int64  `json:"total"` // ever
}

// QuickHelpUses counts each entry's taps in [from, to), in the owner's
// order.
func (db *DB) QuickHelpUses(ctx context.Context, from, to time.Time) ([]QuickHelpUse, error) {
	var out []QuickHelpUse
	err := db.Gorm.WithContext(ctx).Raw(`SELECT q.id AS id, q.title AS title, q.icon AS icon, q.action AS action, q.enabled AS enabled,
	        q.uses AS total, (SELECT COUNT(*) FROM quick_help_uses u WHERE u.entry_id = q.id AND u.used_at >= ? AND u.used_at < ?) AS uses
	    FROM quick_help q ORDER BY q.position, q.id`, from.UTC(), to.UTC()).Scan(&out).Error
	if err != nil {
		return nil, classify("store.QuickHelpUses", err)
	}
	return out, nil
}
