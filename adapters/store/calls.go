package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

// Call states (the calls table's comment has the whole life cycle).
const (
	CallRinging   = "ringing"
	CallAnswered  = "answered"
	CallMissed    = "missed"
	CallDeclined  = "declined"
	CallCancelled = "cancelled"
	CallEnded     = "ended"
)

// CallStateName is how a state reads in Chinese, for errors users see.
func CallStateName(state string) string {
	switch state {
	case CallRinging:
		return "呼叫中"
	case CallAnswered:
		return "通话中"
	case CallMissed:
		return "未接听"
	case CallDeclined:
		return "已拒绝"
	case CallCancelled:
		return "已取消"
	case CallEnded:
		return "已结束"
	}
	return state
}

// Call is one video or voice call.
type Call struct {
	ID           int64
	RoomID       string
	Kind         string // video | voice
	Purpose      string
	Source       string // quick_help | staff_command | console
	EntryID      string
	MemberID     rental.MemberID
	Conversation rental.ConversationID // 0: none
	OrderID      string
	Staff        string   // the staff member who answered, or who started it
	Rung         []string // who was rung: WeCom userids, or "customer"
	State        string
	StartedAt    time.Time
	AnsweredAt   *time.Time
	EndedAt      *time.Time // when it stopped: ended, missed, declined or cancelled
	EndedReason  string
	Rating       int
	RatedAt      *time.Time
	Recorded     bool
}

// Duration is how long an answered call lasted (zero otherwise).
func (c Call) Duration() time.Duration {
	if c.AnsweredAt == nil || c.EndedAt == nil {
		return 0
	}
	return c.EndedAt.Sub(*c.AnsweredAt)
}

type callRow struct {
	ID           int64 `gorm:"primaryKey"`
	RoomID       string
	Kind         string
	Purpose      string
	Source       string
	EntryID      string
	MemberID     *int64
	Conversation *int64
	OrderID      string
	Staff        string
	Rung         string
	State        string
	StartedAt    time.Time
	AnsweredAt   *time.Time
	EndedAt      *time.Time
	EndedReason  string
	Rating       int
	RatedAt      *time.Time
	Recorded     bool
}

func (callRow) TableName() string { return "calls" }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r callRow) call() Call {
	c := Call{ID: r.ID, RoomID: r.RoomID, Kind: r.Kind, Purpose: r.Purpose, Source: r.Source, EntryID: r.EntryID,
		OrderID: r.OrderID, Staff: r.Staff, State: r.State, StartedAt: r.StartedAt.UTC(), AnsweredAt: utcPtr(r.AnsweredAt),
		EndedAt: utcPtr(r.EndedAt), EndedReason: r.EndedReason, Rating: r.Rating, RatedAt: utcPtr(r.RatedAt), Recorded: r.Recorded}
	if r.MemberID != nil {
		c.MemberID = rental.MemberID(*r.MemberID)
	}
	if r.Conversation != nil {
		c.Conversation = rental.ConversationID(*r.Conversation)
	}
	if r.Rung != "" {
		c.Rung = strings.Split(r.Rung, ",")
	}
	return c
}

func callRowOf(c *Call) callRow {
	r := callRow{RoomID: c.RoomID, Kind: c.Kind, Purpose: c.Purpose, Source: c.Source, EntryID: c.EntryID, OrderID: c.OrderID,
		Staff: c.Staff, Rung: strings.Join(c.Rung, ","), State: c.State, StartedAt: c.StartedAt.UTC()}
	if c.MemberID != 0 {
		id := int64(c.MemberID)
		r.MemberID = &id
	}
	if c.Conversation != 0 {
		id := int64(c.Conversation)
		r.Conversation = &id
	}
	return r
}

func (db *DB) createCall(tx *gorm.DB, c *Call, out []OutboxMessage) error {
	if c.State == "" {
		c.State = CallRinging
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = time.Now().UTC()
	}
	row := callRowOf(c)
	if err := tx.Create(&row).Error; err != nil {
		return err
	}
	c.ID = row.ID
	for _, m := range out {
		key := strings.ReplaceAll(m.Key, "{call}", fmt.Sprint(c.ID))
		if err := db.enqueue(tx, m.Kind, key, m.Payload); err != nil {
			return err
		}
	}
	return nil
}

// CreateCall records a new call and enqueues, in the same transaction, the
// messages that ring it. "{call}" in a key becomes the call's id.
func (db *DB) CreateCall(ctx context.Context, c *Call, out ...OutboxMessage) error {
	const op = "store.CreateCall"
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return db.createCall(tx, c, out) })
	return classify(op, err)
}

// CreateCall records a call inside a bridge transaction (a call started
// from a conversation, whose invitation is a message of it).
func (tx *BridgeTx) CreateCall(c *Call, out ...OutboxMessage) error {
	return tx.db.createCall(tx.g, c, out)
}

// Call reads one call.
func (db *DB) Call(ctx context.Context, id int64) (Call, error) {
	var r callRow
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Call{}, rental.Errorf("store.Call", rental.KindNotFound, "找不到这个通话 (no call %d)", id)
	}
	return r.call(), classify("store.Call", err)
}

// CallByRoom reads the call of a room.
func (db *DB) CallByRoom(ctx context.Context, room string) (Call, error) {
	var r callRow
	err := db.Gorm.WithContext(ctx).Where("room_id = ?", room).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Call{}, rental.Errorf("store.CallByRoom", rental.KindNotFound, "找不到这个通话 (no call for room %s)", room)
	}
	return r.call(), classify("store.CallByRoom", err)
}

// CallChange is one state change of a call.
type CallChange struct {
	From   []string // the states it may change from
	To     string
	At     time.Time
	Reason string // ended_reason, for the terminal states
	Staff  string // when set, who answered (or declined)
	// Out is enqueued with the change, only if it happens.
	Out []OutboxMessage
}

// ChangeCall moves a call from one of ch.From to ch.To and records the
// time: answered_at for answered, ended_at for every state that ends a
// call. The change is conditional on the state, so two racing changes
// (a timeout and an answer) cannot both win: the loser gets a conflict
// naming the state the call is in.
func (db *DB) ChangeCall(ctx context.Context, id int64, ch CallChange) (Call, error) {
	const op = "store.ChangeCall"
	if ch.At.IsZero() {
		ch.At = time.Now()
	}
	at := ch.At.UTC()
	upd := map[string]any{"state": ch.To}
	switch ch.To {
	case CallAnswered:
		upd["answered_at"] = at
	case CallRinging:
		return Call{}, rental.Errorf(op, rental.KindInvalid, "a call cannot go back to ringing")
	default:
		upd["ended_at"] = at
		upd["ended_reason"] = ch.Reason
	}
	if ch.Staff != "" {
		upd["staff"] = ch.Staff
	}
	var out Call
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&callRow{}).Where("id = ? AND state IN ?", id, ch.From).Updates(upd)
		if res.Error != nil {
			return res.Error
		}
		var r callRow
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return rental.Errorf(op, rental.KindNotFound, "找不到这个通话 (no call %d)", id)
			}
			return err
		}
		out = r.call()
		if res.RowsAffected == 0 {
			return callConflict(op, out.State, ch.To)
		}
		for _, m := range ch.Out {
			if err := db.enqueue(tx, m.Kind, m.Key, m.Payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return out, classify(op, err)
	}
	return out, nil
}

func callConflict(op, state, to string) error {
	return &rental.Error{Op: op, Kind: rental.KindConflict,
		Message: fmt.Sprintf("通话%s，不能再%s (call is %s; cannot become %s)", CallStateName(state), callVerb(to), state, to)}
}

func callVerb(to string) string {
	switch to {
	case CallAnswered:
		return "接听"
	case CallDeclined:
		return "拒绝"
	case CallCancelled:
		return "取消"
	case CallMissed:
		return "记为未接"
	case CallEnded:
		return "挂断"
	}
	return "变为" + to
}

// RateCall records the customer's rating (1–5) of an answered call, once.
func (db *DB) RateCall(ctx context.Context, id int64, score int, at time.Time) (Call, error) {
	const op = "store.RateCall"
	if score < 1 || score > 5 {
		return Call{}, rental.Errorf(op, rental.KindInvalid, "评分须为 1–5 (score must be 1-5)")
	}
	var out Call
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&callRow{}).Where("id = ? AND answered_at IS NOT NULL AND rating = 0", id).
			Updates(map[string]any{"rating": score, "rated_at": at.UTC()})
		if res.Error != nil {
			return res.Error
		}
		var r callRow
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return rental.Errorf(op, rental.KindNotFound, "找不到这个通话 (no call %d)", id)
			}
			return err
		}
		out = r.call()
		switch {
		case res.RowsAffected == 1:
			return nil
		case out.Rating != 0:
			return rental.Errorf(op, rental.KindConflict, "已经评过分了 (call already rated %d)", out.Rating)
		default:
			return rental.Errorf(op, rental.KindConflict, "通话%s，未接通的通话不能评分 (call is %s; only answered calls are rated)",
				CallStateName(out.State), out.State)
		}
	})
	if err != nil {
		return out, classify(op, err)
	}
	return out, nil
}

// RingingSince lists calls still ringing that started before t, oldest
// first: the ones the timeout job turns into missed calls.
func (db *DB) RingingSince(ctx context.Context, before time.Time, limit int) ([]Call, error) {
	var rows []callRow
	err := db.Gorm.WithContext(ctx).Where("state = ? AND started_at < ?", CallRinging, before.UTC()).
		Order("started_at").Limit(limit).Find(&rows).Error
	out := make([]Call, len(rows))
	for i, r := range rows {
		out[i] = r.call()
	}
	return out, classify("store.RingingSince", err)
}

// CallFilter selects calls for a list.
type CallFilter struct {
	Member rental.MemberID // 0: everyone's
	Before int64           // cursor: calls with a smaller id
	Limit  int             // default 20, at most 100
}

// Calls lists calls, newest first, paged by id.
func (db *DB) Calls(ctx context.Context, f CallFilter) ([]Call, error) {
	if f.Limit <= 0 || f.Limit > 100 {
		f.Limit = 20
	}
	q := db.Gorm.WithContext(ctx).Order(clause.OrderByColumn{Column: clause.Column{Name: "id"}, Desc: true}).Limit(f.Limit)
	if f.Member != 0 {
		q = q.Where("member_id = ?", int64(f.Member))
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var rows []callRow
	err := q.Find(&rows).Error
	out := make([]Call, len(rows))
	for i, r := range rows {
		out[i] = r.call()
	}
	return out, classify("store.Calls", err)
}
