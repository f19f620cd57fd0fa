package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// KBEntry is a stored knowledge-base entry of the assistant. The assistant
// (gateway/assistant) validates entries before they are stored; the store
// keeps them as given.
type KBEntry struct {
	Slug      string // the entry's stable id, unique
	Kind      string // qa | article
	Title     string
	Questions []string
	Answer    string
	Tags      []string
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

type kbEntryRow struct {
	ID        int64 `gorm:"primaryKey"`
	Slug      string
	Kind      string
	Title     string
	Questions string // JSON array
	Answer    string
	Tags      string // JSON array
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (kbEntryRow) TableName() string { return "kb_entries" }

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

func kbRow(e KBEntry) kbEntryRow {
	kind := e.Kind
	if kind == "" {
		kind = "qa"
	}
	return kbEntryRow{Slug: e.Slug, Kind: kind, Title: e.Title, Questions: jsonList(e.Questions), Answer: e.Answer,
		Tags: jsonList(e.Tags), Enabled: e.Enabled, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func (r kbEntryRow) entry() (KBEntry, error) {
	e := KBEntry{Slug: r.Slug, Kind: r.Kind, Title: r.Title, Answer: r.Answer, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Questions), &e.Questions); err != nil {
		return e, err
	}
	err := json.Unmarshal([]byte(r.Tags), &e.Tags)
	return e, err
}

func kbEntries(rows []kbEntryRow) ([]KBEntry, error) {
	out := make([]KBEntry, len(rows))
	for i, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// KBFilter pages the owner's list of entries, in slug order: pass the last
// slug of one page as After to get the next.
type KBFilter struct {
	After string
	Limit int // 1–200; 0 means 50
}

// KBEntries lists entries, enabled or not, by slug.
func (db *DB) KBEntries(ctx context.Context, f KBFilter) ([]KBEntry, error) {
	const op = "store.KBEntries"
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 200)
	var rows []kbEntryRow
	if err := db.Gorm.WithContext(ctx).Where("slug > ?", f.After).Order("slug").Limit(limit).Find(&rows).Error; err != nil {
		return nil, classify(op, err)
	}
	out, err := kbEntries(rows)
	return out, rental.Wrap(op, rental.KindInternal, "", err)
}

// AllKBEntries returns the whole knowledge base, for the assistant's index
// and for export. A shop's knowledge base is small (hundreds of entries).
func (db *DB) AllKBEntries(ctx context.Context) ([]KBEntry, error) {
	const op = "store.AllKBEntries"
	var rows []kbEntryRow
	if err := db.Gorm.WithContext(ctx).Order("slug").Find(&rows).Error; err != nil {
		return nil, classify(op, err)
	}
	out, err := kbEntries(rows)
	return out, rental.Wrap(op, rental.KindInternal, "", err)
}

// KBEntry reads one entry.
func (db *DB) KBEntry(ctx context.Context, slug string) (KBEntry, error) {
	const op = "store.KBEntry"
	var r kbEntryRow
	err := db.Gorm.WithContext(ctx).Where("slug = ?", slug).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return KBEntry{}, rental.Errorf(op, rental.KindNotFound, "没有这条知识 (no entry %q)", slug)
	}
	if err != nil {
		return KBEntry{}, classify(op, err)
	}
	e, err := r.entry()
	return e, rental.Wrap(op, rental.KindInternal, "", err)
}

// CreateKBEntry stores a new entry; a taken slug is a conflict. Times are
// set.
func (db *DB) CreateKBEntry(ctx context.Context, e *KBEntry) error {
	const op = "store.CreateKBEntry"
	now := time.Now().UTC()
	e.CreatedAt, e.UpdatedAt = now, now
	r := kbRow(*e)
	if err := db.Gorm.WithContext(ctx).Create(&r).Error; err != nil {
		if isUniqueViolation(err) {
			return rental.Wrap(op, rental.KindConflict, fmt.Sprintf("编号 %q 已存在 (an entry with this id exists)", e.Slug), err)
		}
		return classify(op, err)
	}
	return nil
}

// UpdateKBEntry replaces an entry's fields (found by slug).
func (db *DB) UpdateKBEntry(ctx context.Context, e *KBEntry) error {
	const op = "store.UpdateKBEntry"
	e.UpdatedAt = time.Now().UTC()
	r := kbRow(*e)
	res := db.Gorm.WithContext(ctx).Model(&kbEntryRow{}).Where("slug = ?", e.Slug).Updates(map[string]any{
		"kind": r.Kind, "title": r.Title, "questions": r.Questions, "answer": r.Answer, "tags": r.Tags,
		"enabled": r.Enabled, "updated_at": r.UpdatedAt,
	})
	if res.Error != nil {
		return classify(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf(op, rental.KindNotFound, "没有这条知识 (no entry %q)", e.Slug)
	}
	return nil
}

// DeleteKBEntry removes an entry. Answer records keep citing its slug.
func (db *DB) DeleteKBEntry(ctx context.Context, slug string) error {
	const op = "store.DeleteKBEntry"
	res := db.Gorm.WithContext(ctx).Where("slug = ?", slug).Delete(&kbEntryRow{})
	if res.Error != nil {
		return classify(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return rental.Errorf(op, rental.KindNotFound, "没有这条知识 (no entry %q)", slug)
	}
	return nil
}

// KBImportReport says what an import did.
type KBImportReport struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"` // only with replace
}

// ImportKB stores entries by slug in one transaction: new slugs are
// created, changed entries updated, identical ones left alone (so importing
// the same file twice changes nothing). With replace, entries the file does
// not have are deleted.
func (db *DB) ImportKB(ctx context.Context, entries []KBEntry, replace bool) (KBImportReport, error) {
	const op = "store.ImportKB"
	var rep KBImportReport
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []kbEntryRow
		if err := tx.Find(&rows).Error; err != nil {
			return err
		}
		have := make(map[string]kbEntryRow, len(rows))
		for _, r := range rows {
			have[r.Slug] = r
		}
		now := time.Now().UTC()
		keep := make(map[string]bool, len(entries))
		for _, e := range entries {
			keep[e.Slug] = true
			nr := kbRow(e)
			old, ok := have[e.Slug]
			switch {
			case !ok:
				nr.CreatedAt, nr.UpdatedAt = now, now
				if err := tx.Create(&nr).Error; err != nil {
					return err
				}
				rep.Created++
			case old.Kind == nr.Kind && old.Title == nr.Title && old.Questions == nr.Questions && old.Answer == nr.Answer &&
				old.Tags == nr.Tags && old.Enabled == nr.Enabled:
				rep.Unchanged++
			default:
				if err := tx.Model(&kbEntryRow{}).Where("id = ?", old.ID).Updates(map[string]any{
					"kind": nr.Kind, "title": nr.Title, "questions": nr.Questions, "answer": nr.Answer, "tags": nr.Tags,
					"enabled": nr.Enabled, "updated_at": now,
				}).Error; err != nil {
					return err
				}
				rep.Updated++
			}
		}
		if !replace {
			return nil
		}
		for slug, r := range have {
			if keep[slug] {
				continue
			}
			if err := tx.Delete(&kbEntryRow{}, r.ID).Error; err != nil {
				return err
			}
			rep.Deleted++
		}
		return nil
	})
	if err != nil {
		return KBImportReport{}, classify(op, err)
	}
	return rep, nil
}

// KBVersion changes whenever the knowledge base does (an entry created,
// changed or deleted), so that every instance can poll it cheaply and
// rebuild its index only then.
func (db *DB) KBVersion(ctx context.Context) (string, error) {
	const op = "store.KBVersion"
	var agg struct {
		N    int64
		MaxI int64
	}
	g := db.Gorm.WithContext(ctx)
	if err := g.Model(&kbEntryRow{}).Select("COUNT(*) AS n, COALESCE(MAX(id), 0) AS max_i").Scan(&agg).Error; err != nil {
		return "", classify(op, err)
	}
	// Deletions change the count; creations the highest id (never reused);
	// edits the latest updated_at.
	v := strconv.FormatInt(agg.N, 10) + "-" + strconv.FormatInt(agg.MaxI, 10)
	var last kbEntryRow
	err := g.Select("id", "updated_at").Order("updated_at DESC, id DESC").Limit(1).Take(&last).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return v, nil
	case err != nil:
		return "", classify(op, err)
	}
	return v + "-" + strconv.FormatInt(last.UpdatedAt.UnixNano(), 10), nil
}
