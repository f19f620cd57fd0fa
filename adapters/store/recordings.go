package store

import (
	"context"
	"encoding/json"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// Recording states.
const (
	RecordingLive        = "recording"
	RecordingPaused      = "paused"
	RecordingStopped     = "stopped"
	RecordingFailed      = "failed"      // could not be finished (see Error)
	RecordingInterrupted = "interrupted" // the process stopped while it recorded
)

// Recording is a room recording as the gateway keeps track of it; the
// media itself is in files under the recordings folder (see media).
type Recording struct {
	ID             int64
	RoomID         string
	Folder         string         // the recording's folder name (media's recording id)
	OrderID        rental.OrderID // 0: not an order's
	State          string
	StartedBy      rental.Actor
	StartedAt      time.Time
	StoppedAt      time.Time // zero until stopped
	PausedMS       int64
	Segments       int
	Head           string // the chain head: the last sealed segment's link
	ManifestSHA256 string
	SizeBytes      int64
	Tracks         []RecordingTrack
	EvidenceID     rental.EvidenceID // the order's evidence item, once stopped
	Error          string
}

// RecordingTrack is one file of a finished recording.
type RecordingTrack struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Container string `json:"container"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
}

type recordingRow struct {
	ID             int64 `gorm:"primaryKey"`
	RoomID         string
	Folder         string
	OrderID        *int64
	State          string
	StartedBy      string
	StartedAt      time.Time
	StoppedAt      *time.Time
	PausedMs       int64
	Segments       int
	Head           string
	ManifestSha256 string
	SizeBytes      int64
	Tracks         string
	EvidenceID     *int64
	Error          string
}

func (recordingRow) TableName() string { return "recordings" }

func (r recordingRow) recording() Recording {
	out := Recording{
		ID: r.ID, RoomID: r.RoomID, Folder: r.Folder, State: r.State, StartedBy: rental.Actor(r.StartedBy),
		StartedAt: r.StartedAt.UTC(), PausedMS: r.PausedMs, Segments: r.Segments, Head: r.Head,
		ManifestSHA256: r.ManifestSha256, SizeBytes: r.SizeBytes, Error: r.Error, Tracks: []RecordingTrack{},
	}
	if r.OrderID != nil {
		out.OrderID = rental.OrderID(*r.OrderID)
	}
	if r.StoppedAt != nil {
		out.StoppedAt = r.StoppedAt.UTC()
	}
	if r.EvidenceID != nil {
		out.EvidenceID = rental.EvidenceID(*r.EvidenceID)
	}
	_ = json.Unmarshal([]byte(r.Tracks), &out.Tracks)
	return out
}

// CreateRecording stores a recording that is starting. A room already
// being recorded is a conflict; an order that does not exist is not found.
func (db *DB) CreateRecording(ctx context.Context, rec *Recording) error {
	const op = "store.CreateRecording"
	row := recordingRow{
		RoomID: rec.RoomID, Folder: rec.Folder, State: RecordingLive, StartedBy: string(rec.StartedBy),
		StartedAt: rec.StartedAt.UTC(), Tracks: "[]",
	}
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if rec.OrderID != 0 {
			var n int64
			if err := tx.Model(&orderRow{}).Where("id = ?", rec.OrderID).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return rental.Errorf(op, rental.KindNotFound, "订单不存在 (no such order)")
			}
			id := int64(rec.OrderID)
			row.OrderID = &id
		}
		if err := tx.Create(&row).Error; err != nil {
			if isDuplicateKey(err) {
				return rental.Wrap(op, rental.KindConflict, "这个房间正在录像 (the room is being recorded already)", err)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return rentalErr(op, err)
	}
	rec.ID, rec.State = row.ID, row.State
	return nil
}

// RecordingHead records the chain head after a sealed segment. Heads only
// move forward: a late, older head does not overwrite a newer one.
func (db *DB) RecordingHead(ctx context.Context, id int64, head string, segments int) error {
	return rentalErr("store.RecordingHead", db.Gorm.WithContext(ctx).Model(&recordingRow{}).
		Where("id = ? AND segments < ?", id, segments).
		Updates(map[string]any{"head": head, "segments": segments}).Error)
}

// SetRecordingState records a pause or a resume; pausedMS is the total
// time paused so far.
func (db *DB) SetRecordingState(ctx context.Context, id int64, state string, pausedMS int64) error {
	return rentalErr("store.SetRecordingState", db.Gorm.WithContext(ctx).Model(&recordingRow{}).
		Where("id = ? AND state IN ?", id, []string{RecordingLive, RecordingPaused}).
		Updates(map[string]any{"state": state, "paused_ms": pausedMS}).Error)
}

// RecordingDone is what a finished recording left: its manifest's hash,
// the chain head and the files.
type RecordingDone struct {
	StoppedAt      time.Time
	PausedMS       int64
	Segments       int
	Head           string
	ManifestSHA256 string
	SizeBytes      int64
	Tracks         []RecordingTrack
	// Evidence, if set, is chained into the recording's order in the same
	// transaction (content: the recording's summary with every hash).
	Evidence *rental.Evidence
}

// FinishRecording marks a recording stopped with what it left, chains its
// evidence item into its order (if any and given), and marks the call in
// its room recorded, all or nothing.
func (db *DB) FinishRecording(ctx context.Context, id int64, d RecordingDone) (*Recording, error) {
	const op = "store.FinishRecording"
	tracks, err := json.Marshal(d.Tracks)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInternal, "", err)
	}
	var s *sealer
	if d.Evidence != nil {
		if s, err = db.sealerFor(op); err != nil {
			return nil, err
		}
	}
	var row recordingRow
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := db.lockForUpdate(tx.Where("id = ?", id)).Take(&row).Error; err != nil {
			return err
		}
		if row.State != RecordingLive && row.State != RecordingPaused {
			return rental.Errorf(op, rental.KindConflict, "录像已结束 (the recording has ended already)")
		}
		stopped := d.StoppedAt.UTC()
		updates := map[string]any{
			"state": RecordingStopped, "stopped_at": stopped, "paused_ms": d.PausedMS, "segments": d.Segments, "head": d.Head,
			"manifest_sha256": d.ManifestSHA256, "size_bytes": d.SizeBytes, "tracks": string(tracks),
		}
		if d.Evidence != nil && row.OrderID != nil {
			d.Evidence.OrderID = rental.OrderID(*row.OrderID)
			// The evidence chain's own append, inside this transaction:
			// the recording is stopped and chained, or neither.
			if err := db.appendEvidence(tx, s, d.Evidence); err != nil {
				return err
			}
			updates["evidence_id"] = int64(d.Evidence.ID)
		}
		if err := tx.Model(&recordingRow{}).Where("id = ?", id).Updates(updates).Error; err != nil {
			return err
		}
		if err := tx.Table("calls").Where("room_id = ?", row.RoomID).Update("recorded", true).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", id).Take(&row).Error
	})
	if err != nil {
		return nil, rentalErr(op, err)
	}
	out := row.recording()
	return &out, nil
}

// FailRecording marks a live recording failed (it could not be started
// or finished); reason is for the staff console and logs.
func (db *DB) FailRecording(ctx context.Context, id int64, state, reason string, at time.Time) error {
	return rentalErr("store.FailRecording", db.Gorm.WithContext(ctx).Model(&recordingRow{}).
		Where("id = ? AND state IN ?", id, []string{RecordingLive, RecordingPaused}).
		Updates(map[string]any{"state": state, "error": reason, "stopped_at": at.UTC()}).Error)
}

// LiveRecordings lists the recordings in progress (recording or paused),
// oldest first: at start-up, the ones an earlier process left behind.
func (db *DB) LiveRecordings(ctx context.Context) ([]Recording, error) {
	var rows []recordingRow
	if err := db.Gorm.WithContext(ctx).Where("state IN ?", []string{RecordingLive, RecordingPaused}).Order("id").
		Find(&rows).Error; err != nil {
		return nil, rentalErr("store.LiveRecordings", err)
	}
	out := make([]Recording, len(rows))
	for i, r := range rows {
		out[i] = r.recording()
	}
	return out, nil
}

// RecordingByID reads one recording.
func (db *DB) RecordingByID(ctx context.Context, id int64) (*Recording, error) {
	var row recordingRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, rentalErr("store.RecordingByID", err)
	}
	out := row.recording()
	return &out, nil
}

// LiveRecording is the room's recording in progress (recording or
// paused); not found when there is none.
func (db *DB) LiveRecording(ctx context.Context, roomID string) (*Recording, error) {
	var row recordingRow
	if err := db.Gorm.WithContext(ctx).Where("room_id = ? AND state IN ?", roomID, []string{RecordingLive, RecordingPaused}).
		Take(&row).Error; err != nil {
		return nil, rentalErr("store.LiveRecording", err)
	}
	out := row.recording()
	return &out, nil
}

// Recordings lists recordings newest first, those of order if it is not
// 0, limit at a time after cursor (an id; 0 for the first page). next is
// the cursor of the following page, 0 at the end.
func (db *DB) Recordings(ctx context.Context, order rental.OrderID, cursor int64, limit int) (out []Recording, next int64, err error) {
	q := db.Gorm.WithContext(ctx).Order("id DESC").Limit(limit + 1)
	if order != 0 {
		q = q.Where("order_id = ?", order)
	}
	if cursor > 0 {
		q = q.Where("id < ?", cursor)
	}
	var rows []recordingRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, 0, rentalErr("store.Recordings", err)
	}
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].ID
	}
	out = make([]Recording, len(rows))
	for i, r := range rows {
		out[i] = r.recording()
	}
	return out, next, nil
}
