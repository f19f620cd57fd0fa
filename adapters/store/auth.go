package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

type sessionRow struct {
	ID          int64 `gorm:"primaryKey"`
	Role        string
	Subject     string
	RefreshHash string
	ExpiresAt   time.Time
	RevokedAt   *time.Time
	CreatedAt   time.Time
	UsedAt      time.Time
}

func (sessionRow) TableName() string { return "sessions" }

// Session is a login: who, in which role, until when.
type Session struct {
	ID        int64
	Role      rental.Role
	Subject   string
	ExpiresAt time.Time
}

// CreateSession records a login with the hash of its refresh token.
func (db *DB) CreateSession(ctx context.Context, role rental.Role, subject, refreshHash string, expires time.Time) (Session, error) {
	now := time.Now().UTC()
	row := sessionRow{Role: string(role), Subject: subject, RefreshHash: refreshHash, ExpiresAt: expires.UTC(), CreatedAt: now, UsedAt: now}
	if err := db.Gorm.WithContext(ctx).Create(&row).Error; err != nil {
		return Session{}, rental.Wrap("store.CreateSession", rental.KindUnavailable, "", err)
	}
	return Session{ID: row.ID, Role: role, Subject: subject, ExpiresAt: row.ExpiresAt}, nil
}

// RotateSession swaps a refresh token for a new one: the old hash must
// match a live session, and matches only once, so a stolen refresh token
// used after its owner used it fails (and the reverse).
func (db *DB) RotateSession(ctx context.Context, oldHash, newHash string, expires time.Time) (Session, error) {
	const op = "store.RotateSession"
	now := time.Now().UTC()
	var row sessionRow
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("refresh_hash = ?", oldHash).Take(&row).Error; err != nil {
			return err
		}
		if row.RevokedAt != nil || !row.ExpiresAt.After(now) {
			return rental.Errorf(op, rental.KindUnauthorized, "登录已失效，请重新登录 (session ended, log in again)")
		}
		res := tx.Model(&sessionRow{}).Where("id = ? AND refresh_hash = ?", row.ID, oldHash).
			Updates(map[string]any{"refresh_hash": newHash, "expires_at": expires.UTC(), "used_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return rental.Errorf(op, rental.KindUnauthorized, "登录已失效，请重新登录 (refresh token already used)")
		}
		row.ExpiresAt = expires.UTC()
		return nil
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, rental.Errorf(op, rental.KindUnauthorized, "登录已失效，请重新登录 (unknown refresh token)")
	}
	if err != nil {
		return Session{}, classify(op, err)
	}
	return Session{ID: row.ID, Role: rental.Role(row.Role), Subject: row.Subject, ExpiresAt: row.ExpiresAt}, nil
}

// RevokeSession ends a login (logout); its tokens stop working at once.
func (db *DB) RevokeSession(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	err := db.Gorm.WithContext(ctx).Model(&sessionRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error
	return rental.Wrap("store.RevokeSession", rental.KindUnavailable, "", err)
}

// RevokeSessions ends every login of a subject (e.g. a staff member removed).
func (db *DB) RevokeSessions(ctx context.Context, role rental.Role, subject string) error {
	now := time.Now().UTC()
	err := db.Gorm.WithContext(ctx).Model(&sessionRow{}).Where("role = ? AND subject = ? AND revoked_at IS NULL", string(role), subject).Update("revoked_at", now).Error
	return rental.Wrap("store.RevokeSessions", rental.KindUnavailable, "", err)
}

// SessionLive reports whether a session is neither revoked nor expired.
func (db *DB) SessionLive(ctx context.Context, id int64) (bool, error) {
	var row sessionRow
	err := db.Gorm.WithContext(ctx).Select("revoked_at", "expires_at").Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, rental.Wrap("store.SessionLive", rental.KindUnavailable, "", err)
	}
	return row.RevokedAt == nil && row.ExpiresAt.After(time.Now()), nil
}

type smsRow struct {
	ID        int64 `gorm:"primaryKey"`
	Phone     string
	IP        string `gorm:"column:ip"`
	CodeHash  string
	Attempts  int
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (smsRow) TableName() string { return "sms_codes" }

// SMSLimits are the sending limits per phone and per client IP.
type SMSLimits struct {
	PhonePerMinute, PhonePerDay, IPPerHour, IPPerDay int
}

// SaveSMSCode records a code to send, unless a limit is reached; the check
// and the insert are one transaction, so concurrent requests cannot slip
// past a limit together on SQLite (one writer) — on PostgreSQL the phone's
// codes are locked first.
func (db *DB) SaveSMSCode(ctx context.Context, phone, ip, codeHash string, ttl time.Duration, lim SMSLimits) error {
	const op = "store.SaveSMSCode"
	now := time.Now().UTC()
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.Dialect == Postgres {
			// Serialise sends per phone: an advisory transaction lock keyed by the phone.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext(?))", "sms:"+phone).Error; err != nil {
				return err
			}
		}
		count := func(col, val string, since time.Time) (int64, error) {
			var n int64
			err := tx.Model(&smsRow{}).Where(col+" = ? AND created_at > ?", val, since).Count(&n).Error
			return n, err
		}
		checks := []struct {
			col, val string
			window   time.Duration
			max      int
			msg      string
		}{
			{"phone", phone, time.Minute, lim.PhonePerMinute, "验证码发送太频繁，请一分钟后再试 (one code a minute per phone)"},
			{"phone", phone, 24 * time.Hour, lim.PhonePerDay, "今天发送的验证码太多了，请明天再试 (daily limit for this phone reached)"},
			{"ip", ip, time.Hour, lim.IPPerHour, "请求太频繁，请稍后再试 (too many codes from this network)"},
			{"ip", ip, 24 * time.Hour, lim.IPPerDay, "请求太频繁，请明天再试 (daily limit for this network reached)"},
		}
		for _, c := range checks {
			if c.max <= 0 {
				continue
			}
			n, err := count(c.col, c.val, now.Add(-c.window))
			if err != nil {
				return err
			}
			if n >= int64(c.max) {
				return rental.Errorf(op, rental.KindRateLimited, "%s", c.msg)
			}
		}
		return tx.Create(&smsRow{Phone: phone, IP: ip, CodeHash: codeHash, ExpiresAt: now.Add(ttl), CreatedAt: now}).Error
	})
	return classify(op, err)
}

// CheckSMSCode verifies a code against the phone's newest unused, unexpired
// code, counting attempts: after maxAttempts wrong tries the code is dead.
func (db *DB) CheckSMSCode(ctx context.Context, phone string, matches func(hash string) bool, maxAttempts int) error {
	const op = "store.CheckSMSCode"
	now := time.Now().UTC()
	var ok bool
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row smsRow
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
			Where("phone = ? AND used_at IS NULL AND expires_at > ?", phone, now).Order("id DESC").Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return rental.Errorf(op, rental.KindUnauthorized, "验证码已过期，请重新获取 (code expired or not sent; request a new one)")
		}
		if err != nil {
			return err
		}
		if row.Attempts >= maxAttempts {
			return rental.Errorf(op, rental.KindUnauthorized, "错误次数太多，请重新获取验证码 (too many wrong tries; request a new code)")
		}
		if matches(row.CodeHash) {
			ok = true
			return tx.Model(&row).Updates(map[string]any{"used_at": now, "attempts": row.Attempts + 1}).Error
		}
		return tx.Model(&row).Update("attempts", row.Attempts+1).Error
	})
	if err != nil {
		return classify(op, err)
	}
	if !ok {
		return rental.Errorf(op, rental.KindUnauthorized, "验证码不正确 (wrong code)")
	}
	return nil
}

type staffRow struct {
	ID          int64  `gorm:"primaryKey"`
	WeComUserID string `gorm:"column:wecom_userid"`
	Name        string
	Active      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (staffRow) TableName() string { return "staff" }

// Staff is a WeCom member the owner registered.
type Staff struct {
	ID          int64  `json:"id"`
	WeComUserID string `json:"wecom_userid"`
	Name        string `json:"name"`
	Active      bool   `json:"active"`
}

// SaveStaff registers (or renames, or (de)activates) a staff member.
func (db *DB) SaveStaff(ctx context.Context, userID, name string, active bool) (Staff, error) {
	now := time.Now().UTC()
	row := staffRow{WeComUserID: userID, Name: name, Active: active, CreatedAt: now, UpdatedAt: now}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "wecom_userid"}},
		DoUpdates: clause.AssignmentColumns([]string{"name", "active", "updated_at"}),
	}).Create(&row).Error
	if err != nil {
		return Staff{}, classify("store.SaveStaff", err)
	}
	return db.StaffByUserID(ctx, userID)
}

// StaffByUserID finds a registered staff member.
func (db *DB) StaffByUserID(ctx context.Context, userID string) (Staff, error) {
	var row staffRow
	err := db.Gorm.WithContext(ctx).Where("wecom_userid = ?", userID).Take(&row).Error
	if err != nil {
		return Staff{}, classify("store.StaffByUserID", err)
	}
	return Staff{ID: row.ID, WeComUserID: row.WeComUserID, Name: row.Name, Active: row.Active}, nil
}

// ListStaff lists every registered staff member.
func (db *DB) ListStaff(ctx context.Context) ([]Staff, error) {
	var rows []staffRow
	if err := db.Gorm.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, classify("store.ListStaff", err)
	}
	out := make([]Staff, len(rows))
	for i, r := range rows {
		out[i] = Staff{ID: r.ID, WeComUserID: r.WeComUserID, Name: r.Name, Active: r.Active}
	}
	return out, nil
}

type ownerCredRow struct {
	Username     string `gorm:"primaryKey"`
	PasswordHash string
	UpdatedAt    time.Time
}

func (ownerCredRow) TableName() string { return "owner_credentials" }

// OwnerPasswordHash reads the owner's password hash; ok is false before the
// first start has seeded it.
func (db *DB) OwnerPasswordHash(ctx context.Context, username string) (string, bool, error) {
	var row ownerCredRow
	err := db.Gorm.WithContext(ctx).Where("username = ?", username).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify("store.OwnerPasswordHash", err)
	}
	return row.PasswordHash, true, nil
}

// SetOwnerPasswordHash stores the owner's password hash.
func (db *DB) SetOwnerPasswordHash(ctx context.Context, username, hash string) error {
	row := ownerCredRow{Username: username, PasswordHash: hash, UpdatedAt: time.Now().UTC()}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "username"}},
		DoUpdates: clause.AssignmentColumns([]string{"password_hash", "updated_at"}),
	}).Create(&row).Error
	return classify("store.SetOwnerPasswordHash", err)
}
