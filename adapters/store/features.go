package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// FeatureListEntry is one line of a flag's allow or deny list: what the
// owner typed, resolved when saved to a member or a staff member, so that
// deciding a flag never needs the database.
type FeatureListEntry struct {
	Entry    string `json:"entry"`
	MemberID int64  `json:"member_id,omitempty"`
	Staff    string `json:"staff,omitempty"` // WeCom userid
}

// FeatureFlag is one feature's rollout (see migration 00080).
type FeatureFlag struct {
	Key          string             `json:"key"`
	Description  string             `json:"description"`
	Enabled      bool               `json:"enabled"`
	Percent      int                `json:"percent"`
	Allow        []FeatureListEntry `json:"allow"`
	Deny         []FeatureListEntry `json:"deny"`
	Tiers        []string           `json:"tiers"`
	KPI          string             `json:"kpi"`
	MinSample    int                `json:"min_sample"`
	Threshold    float64            `json:"threshold"`
	Window       time.Duration      `json:"-"`
	WindowHours  int                `json:"window_hours"`
	PausedAt     *time.Time         `json:"paused_at,omitempty"`
	PausedReason string             `json:"paused_reason,omitempty"`
	Version      int                `json:"version"`
	UpdatedAt    time.Time          `json:"updated_at"`
	UpdatedBy    string             `json:"updated_by"`
}

// normalize makes empty lists [] rather than null in JSON.
func (f *FeatureFlag) normalize() {
	if f.Allow == nil {
		f.Allow = []FeatureListEntry{}
	}
	if f.Deny == nil {
		f.Deny = []FeatureListEntry{}
	}
	if f.Tiers == nil {
		f.Tiers = []string{}
	}
}

// Paused reports whether the rollout is paused.
func (f FeatureFlag) Paused() bool { return f.PausedAt != nil }

type featureRow struct {
	Key           string `gorm:"primaryKey"`
	Description   string
	Enabled       bool
	Percent       int
	Allow         string
	Deny          string
	Tiers         string
	KPI           string `gorm:"column:kpi"`
	MinSample     int
	Threshold     float64
	WindowSeconds int64
	PausedAt      *time.Time
	PausedReason  string
	Version       int
	UpdatedAt     time.Time
	UpdatedBy     string
}

func (featureRow) TableName() string { return "feature_flags" }

func toFeatureRow(f FeatureFlag) featureRow {
	enc := func(v any) string { b, _ := json.Marshal(v); return string(b) } // plain structs and strings always marshal
	if f.Allow == nil {
		f.Allow = []FeatureListEntry{}
	}
	if f.Deny == nil {
		f.Deny = []FeatureListEntry{}
	}
	var paused *time.Time
	if f.PausedAt != nil {
		t := f.PausedAt.UTC()
		paused = &t
	}
	return featureRow{Key: f.Key, Description: f.Description, Enabled: f.Enabled, Percent: f.Percent,
		Allow: enc(f.Allow), Deny: enc(f.Deny), Tiers: jsonList(f.Tiers), KPI: f.KPI, MinSample: f.MinSample,
		Threshold: f.Threshold, WindowSeconds: int64(f.Window / time.Second), PausedAt: paused, PausedReason: f.PausedReason,
		Version: f.Version, UpdatedAt: f.UpdatedAt.UTC(), UpdatedBy: f.UpdatedBy}
}

func (r featureRow) flag() (FeatureFlag, error) {
	f := FeatureFlag{Key: r.Key, Description: r.Description, Enabled: r.Enabled, Percent: r.Percent, KPI: r.KPI,
		MinSample: r.MinSample, Threshold: r.Threshold, Window: time.Duration(r.WindowSeconds) * time.Second,
		WindowHours: int(r.WindowSeconds / 3600), PausedReason: r.PausedReason, Version: r.Version,
		UpdatedAt: r.UpdatedAt.UTC(), UpdatedBy: r.UpdatedBy}
	if r.PausedAt != nil {
		t := r.PausedAt.UTC()
		f.PausedAt = &t
	}
	for _, p := range []struct {
		s string
		v any
	}{{r.Allow, &f.Allow}, {r.Deny, &f.Deny}, {r.Tiers, &f.Tiers}} {
		if err := json.Unmarshal([]byte(p.s), p.v); err != nil {
			return f, rental.Wrap("store.featureRow", rental.KindInternal, "", err)
		}
	}
	f.normalize()
	return f, nil
}

// EnsureFeatureFlags inserts the flags that do not exist yet, as given;
// existing ones are left exactly as the owner set them.
func (db *DB) EnsureFeatureFlags(ctx context.Context, defaults []FeatureFlag) error {
	for _, f := range defaults {
		if f.Version == 0 {
			f.Version = 1
		}
		if f.UpdatedAt.IsZero() {
			f.UpdatedAt = time.Now()
		}
		row := toFeatureRow(f)
		if err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return classify("store.EnsureFeatureFlags", err)
		}
	}
	return nil
}

// FeatureFlags lists every flag by key.
func (db *DB) FeatureFlags(ctx context.Context) ([]FeatureFlag, error) {
	const op = "store.FeatureFlags"
	var rows []featureRow
	if err := db.Gorm.WithContext(ctx).Order("key").Find(&rows).Error; err != nil {
		return nil, classify(op, err)
	}
	out := make([]FeatureFlag, 0, len(rows))
	for _, r := range rows {
		f, err := r.flag()
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// FeatureChange is one audited change of a flag.
type FeatureChange struct {
	Actor   string // owner:<username> | guard
	Action  string // update | pause | resume
	Reason  string
	Figures any // what the guard rail saw; nil for the owner's changes
	// Version, when not 0, must be the flag's current version (the owner
	// edited what is stored now); otherwise the change is a conflict.
	Version int
	// Notify, when set, is enqueued in the outbox in the same transaction
	// (the owner told in WeCom about a pause exactly when it is recorded).
	Notify *OutboxMessage
}

// UpdateFeatureFlag changes a flag with fn and appends the audit line, in
// one transaction. It returns the flag before and after.
func (db *DB) UpdateFeatureFlag(ctx context.Context, key string, ch FeatureChange, fn func(*FeatureFlag) error) (before, after FeatureFlag, err error) {
	const op = "store.UpdateFeatureFlag"
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row featureRow
		q := tx.Where("key = ?", key)
		if db.Dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&row).Error; err != nil {
			if err == gorm.ErrRecordNotFound {
				return rental.Errorf(op, rental.KindNotFound, "没有这个功能开关 (no feature flag %q)", key)
			}
			return err
		}
		var err error
		if before, err = row.flag(); err != nil {
			return err
		}
		if ch.Version != 0 && ch.Version != before.Version {
			return rental.Errorf(op, rental.KindConflict, "开关已被修改，请刷新后再改 (flag %s is at version %d, not %d)", key, before.Version, ch.Version)
		}
		after = before
		after.Allow = append([]FeatureListEntry(nil), before.Allow...)
		after.Deny = append([]FeatureListEntry(nil), before.Deny...)
		after.Tiers = append([]string(nil), before.Tiers...)
		if err := fn(&after); err != nil {
			return err
		}
		after.normalize()
		after.Key = key
		after.Version = before.Version + 1
		after.UpdatedAt = time.Now().UTC()
		after.UpdatedBy = ch.Actor
		after.WindowHours = int(after.Window / time.Hour)
		next := toFeatureRow(after)
		if err := tx.Model(&featureRow{}).Where("key = ? AND version = ?", key, before.Version).Select("*").Updates(&next).Error; err != nil {
			return err
		}
		b, _ := json.Marshal(before)
		a, _ := json.Marshal(after)
		line := featureAuditRow{Flag: key, At: after.UpdatedAt, Actor: ch.Actor, Action: ch.Action, Reason: truncate(ch.Reason, 500),
			StateBefore: string(b), StateAfter: string(a)}
		if ch.Figures != nil {
			fb, err := json.Marshal(ch.Figures)
			if err != nil {
				return rental.Wrap(op, rental.KindInternal, "", err)
			}
			line.Figures = string(fb)
		}
		if err := tx.Create(&line).Error; err != nil {
			return err
		}
		if n := ch.Notify; n != nil {
			return db.enqueue(tx, n.Kind, n.Key, n.Payload)
		}
		return nil
	})
	if err != nil {
		return FeatureFlag{}, FeatureFlag{}, classify(op, err)
	}
	return before, after, nil
}

type featureAuditRow struct {
	ID          int64 `gorm:"primaryKey"`
	Flag        string
	At          time.Time
	Actor       string
	Action      string
	Reason      string
	StateBefore string
	StateAfter  string
	Figures     string
}

func (featureAuditRow) TableName() string { return "feature_audit" }

// FeatureAuditEntry is one line of the flags' audit.
type FeatureAuditEntry struct {
	ID      int64           `json:"id"`
	Flag    string          `json:"flag"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Reason  string          `json:"reason,omitempty"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
	Figures json.RawMessage `json:"figures,omitempty"`
}

// FeatureAudit pages the audit newest first: pass the last ID of one page
// as before to get the next. flag "" lists every flag's.
func (db *DB) FeatureAudit(ctx context.Context, flag string, before int64, limit int) ([]FeatureAuditEntry, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Order("id DESC").Limit(limit)
	if flag != "" {
		q = q.Where("flag = ?", flag)
	}
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var rows []featureAuditRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, classify("store.FeatureAudit", err)
	}
	out := make([]FeatureAuditEntry, len(rows))
	for i, r := range rows {
		out[i] = FeatureAuditEntry{ID: r.ID, Flag: r.Flag, At: r.At.UTC(), Actor: r.Actor, Action: r.Action, Reason: r.Reason,
			Before: json.RawMessage(r.StateBefore), After: json.RawMessage(r.StateAfter)}
		if r.Figures != "" {
			out[i].Figures = json.RawMessage(r.Figures)
		}
	}
	return out, nil
}

// ResolveFeatureList turns what the owner typed into list entries: a
// member number (会员号) or a member id names a member, "staff:<userid>"
// (or a registered staff userid) a staff tester. Anything else is an
// invalid error naming it.
func (db *DB) ResolveFeatureList(ctx context.Context, typed []string) ([]FeatureListEntry, error) {
	const op = "store.ResolveFeatureList"
	out := []FeatureListEntry{}
	seen := map[string]bool{}
	for _, raw := range typed {
		s := strings.TrimSpace(raw)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if len(s) > 64 {
			return nil, rental.Errorf(op, rental.KindInvalid, "名单项太长 (list entry too long): %.20q…", s)
		}
		if id, ok := strings.CutPrefix(s, "staff:"); ok && id != "" {
			out = append(out, FeatureListEntry{Entry: s, Staff: id})
			continue
		}
		var m struct{ ID int64 }
		err := db.Gorm.WithContext(ctx).Table("members").Select("id").Where("member_no = ? AND merged_into IS NULL", s).Take(&m).Error
		if err == nil {
			out = append(out, FeatureListEntry{Entry: s, MemberID: m.ID})
			continue
		}
		if err != gorm.ErrRecordNotFound {
			return nil, classify(op, err)
		}
		if n, perr := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64); perr == nil && n > 0 {
			err := db.Gorm.WithContext(ctx).Table("members").Select("id").Where("id = ?", n).Take(&m).Error
			if err == nil {
				out = append(out, FeatureListEntry{Entry: s, MemberID: m.ID})
				continue
			}
			if err != gorm.ErrRecordNotFound {
				return nil, classify(op, err)
			}
		}
		var staff int64
		if err := db.Gorm.WithContext(ctx).Table("staff").Where("wecom_userid = ?", s).Count(&staff).Error; err != nil {
			return nil, classify(op, err)
		}
		if staff > 0 {
			out = append(out, FeatureListEntry{Entry: s, Staff: s})
			continue
		}
		return nil, rental.Errorf(op, rental.KindInvalid, "找不到会员或店员 %q（填会员号、会员编号，或 staff:企业微信账号） (no member or staff %q)", s, s)
	}
	return out, nil
}

// MemberTier is a live member's id and tier.
type MemberTier struct {
	ID   int64
	Tier string
}

// MemberTiers lists every live (not merged) member's id and tier, for
// working out how many members a flag reaches.
func (db *DB) MemberTiers(ctx context.Context) ([]MemberTier, error) {
	var out []MemberTier
	err := db.Gorm.WithContext(ctx).Table("members").Select("id, tier").Where("merged_into IS NULL").Order("id").Scan(&out).Error
	return out, classify("store.MemberTiers", err)
}
