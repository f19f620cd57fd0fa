package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

var _ rental.InboundStore = (*DB)(nil)

type inboundRow struct {
	ID          int64 `gorm:"primaryKey"`
	Channel     string
	DedupeKey   string
	Kind        string
	FromUser    string
	ToUser      string
	SentAt      *time.Time
	Payload     []byte
	ReceivedAt  time.Time
	ProcessedAt *time.Time
	Attempts    int
	LastError   string
}

func (inboundRow) TableName() string { return "inbound" }

func inboundAD(channel rental.Channel, key string) []byte {
	return []byte("inbound\x00" + string(channel) + "\x00" + key)
}

// SaveInbound stores a verified callback once: a second delivery with the
// same channel and dedupe key changes nothing and reports created=false.
func (db *DB) SaveInbound(ctx context.Context, in *rental.Inbound) (bool, error) {
	const op = "store.SaveInbound"
	s, err := db.sealerFor(op)
	if err != nil {
		return false, err
	}
	if in.Channel == "" || in.DedupeKey == "" {
		return false, rental.Errorf(op, rental.KindInvalid, "inbound needs a channel and a dedupe key")
	}
	row := inboundRow{
		Channel: string(in.Channel), DedupeKey: in.DedupeKey, Kind: in.Kind,
		FromUser: in.From, ToUser: in.To,
		Payload:    s.seal(in.Payload, inboundAD(in.Channel, in.DedupeKey)),
		ReceivedAt: time.Now().UTC(),
	}
	if !in.SentAt.IsZero() {
		t := in.SentAt.UTC()
		row.SentAt = &t
	}
	res := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return false, rental.Wrap(op, rental.KindUnavailable, "cannot store the callback", res.Error)
	}
	if res.RowsAffected == 1 {
		in.ID, in.ReceivedAt = row.ID, row.ReceivedAt
		return true, nil
	}
	var existing inboundRow
	err = db.Gorm.WithContext(ctx).Select("id", "received_at").
		Where("channel = ? AND dedupe_key = ?", in.Channel, in.DedupeKey).Take(&existing).Error
	if err != nil {
		return false, rental.Wrap(op, rental.KindUnavailable, "cannot read the stored callback", err)
	}
	in.ID, in.ReceivedAt = existing.ID, existing.ReceivedAt
	return false, nil
}

// Inbound reads one stored callback with its payload opened.
func (db *DB) Inbound(ctx context.Context, id int64) (*rental.Inbound, error) {
	const op = "store.Inbound"
	s, err := db.sealerFor(op)
	if err != nil {
		return nil, err
	}
	var row inboundRow
	err = db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, rental.Errorf(op, rental.KindNotFound, "no inbound callback %d", id)
	}
	if err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "cannot read the callback", err)
	}
	payload, err := s.open(row.Payload, inboundAD(rental.Channel(row.Channel), row.DedupeKey))
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "", err)
	}
	in := &rental.Inbound{
		ID: row.ID, Channel: rental.Channel(row.Channel), DedupeKey: row.DedupeKey, Kind: row.Kind,
		From: row.FromUser, To: row.ToUser, Payload: payload, ReceivedAt: row.ReceivedAt, ProcessedAt: row.ProcessedAt,
	}
	if row.SentAt != nil {
		in.SentAt = *row.SentAt
	}
	return in, nil
}

// CountInbound counts stored callbacks of a channel (tests and benchmarks).
func (db *DB) CountInbound(ctx context.Context, channel rental.Channel) (int64, error) {
	var n int64
	err := db.Gorm.WithContext(ctx).Model(&inboundRow{}).Where("channel = ?", channel).Count(&n).Error
	return n, rental.Wrap("store.CountInbound", rental.KindUnavailable, "cannot count callbacks", err)
}
