package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

type appMeta struct {
	Key       string `gorm:"primaryKey"`
	Value     string
	UpdatedAt time.Time
}

func (appMeta) TableName() string { return "app_meta" }

// Meta reads one app_meta value; ok is false when it is not set.
func (db *DB) Meta(ctx context.Context, key string) (value string, ok bool, err error) {
	var m appMeta
	err = db.Gorm.WithContext(ctx).Where("key = ?", key).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, rental.Wrap("store.Meta", rental.KindUnavailable, "cannot read app_meta", err)
	}
	return m.Value, true, nil
}

// SetMeta writes one app_meta value.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	m := appMeta{Key: key, Value: value, UpdatedAt: time.Now().UTC()}
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "updated_at"}),
	}).Create(&m).Error
	return rental.Wrap("store.SetMeta", rental.KindUnavailable, "cannot write app_meta", err)
}

const dataKeyMeta = "data_key_fingerprint"

// DataKeyFingerprint identifies a data key without revealing it.
func DataKeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tacklegate data key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// UseDataKey installs the key that seals evidence at rest, after making sure
// the database's evidence is read and written with one key: the first start
// records the key's fingerprint; a later start with a different key is
// refused, because everything it encrypted would be unreadable with the key
// the rest was written with.
func (db *DB) UseDataKey(ctx context.Context, key []byte) error {
	const op = "store.UseDataKey"
	s, err := newSealer(key)
	if err != nil {
		return rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_DATA_KEY must be 32 bytes", err)
	}
	if err := db.checkFingerprint(ctx, key); err != nil {
		return err
	}
	db.sealer = s
	return nil
}

// sealerFor returns the installed sealer; storing evidence without one would
// be storing it in clear, so it is an error, not a fallback.
func (db *DB) sealerFor(op string) (*sealer, error) {
	if db.sealer == nil {
		return nil, rental.Errorf(op, rental.KindInternal, "no data key installed (call UseDataKey)")
	}
	return db.sealer, nil
}

func (db *DB) checkFingerprint(ctx context.Context, key []byte) error {
	const op = "store.UseDataKey"
	fp := DataKeyFingerprint(key)
	stored, ok, err := db.Meta(ctx, dataKeyMeta)
	if err != nil {
		return err
	}
	if !ok {
		return db.SetMeta(ctx, dataKeyMeta, fp)
	}
	if !hmac.Equal([]byte(stored), []byte(fp)) {
		return rental.Errorf(op, rental.KindInvalid,
			"TACKLEGATE_DATA_KEY is not the key this database was set up with (fingerprint %s…, expected %s…); evidence written with the other key would be unreadable", fp[:8], stored[:8])
	}
	return nil
}
