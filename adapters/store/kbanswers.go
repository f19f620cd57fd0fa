package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// AnswerRecord is one turn of the assistant: an answer it sent or a handoff
// it decided, and whether that resolved the customer's question.
type AnswerRecord struct {
	ID           int64
	Conversation string
	Question     string // the customer's words, sealed at rest
	Answer       string // what was sent, sealed at rest; "" for a handoff
	Kind         string // kb | catalog | vision | none
	Sources      []string
	Confidence   float64
	Phrased      bool
	ModelError   string
	Handoff      string // asked | dispute | low_confidence | unhelpful | image
	Outcome      string // pending | resolved | unresolved
	OutcomeBy    string // customer | person | handoff
	CreatedAt    time.Time
	DecidedAt    *time.Time
}

type kbAnswerRow struct {
	ID           int64 `gorm:"primaryKey"`
	Conversation string
	Question     []byte
	Answer       []byte
	Kind         string
	Sources      string
	Confidence   float64
	Phrased      bool
	ModelError   string
	Handoff      string
	Outcome      string
	OutcomeBy    string
	CreatedAt    time.Time
	DecidedAt    *time.Time
}

func (kbAnswerRow) TableName() string { return "kb_answers" }

func kbAnswerAD(conversation, field string) []byte {
	return []byte("kb_answers\x00" + conversation + "\x00" + field)
}

// Answer outcomes.
const (
	OutcomePending    = "pending"
	OutcomeResolved   = "resolved"
	OutcomeUnresolved = "unresolved"
)

// AddAnswerRecord stores a record and sets its ID; its texts are sealed
// with the data key.
func (db *DB) AddAnswerRecord(ctx context.Context, r *AnswerRecord) error {
	const op = "store.AddAnswerRecord"
	s, err := db.sealerFor(op)
	if err != nil {
		return err
	}
	if r.Outcome == "" {
		r.Outcome = OutcomePending
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = r.CreatedAt.UTC()
	if r.DecidedAt != nil {
		t := r.DecidedAt.UTC()
		r.DecidedAt = &t
	}
	row := kbAnswerRow{
		Conversation: r.Conversation,
		Question:     s.seal([]byte(r.Question), kbAnswerAD(r.Conversation, "question")),
		Answer:       s.seal([]byte(r.Answer), kbAnswerAD(r.Conversation, "answer")),
		Kind:         r.Kind, Sources: jsonList(r.Sources), Confidence: r.Confidence, Phrased: r.Phrased,
		ModelError: truncate(r.ModelError, 500), Handoff: r.Handoff, Outcome: r.Outcome, OutcomeBy: r.OutcomeBy,
		CreatedAt: r.CreatedAt, DecidedAt: r.DecidedAt,
	}
	if err := db.Gorm.WithContext(ctx).Create(&row).Error; err != nil {
		return classify(op, err)
	}
	r.ID = row.ID
	return nil
}

// SetAnswerOutcome decides a pending record. A record already decided is
// left as it is, so that the first signal wins (a late "thank you" after a
// person stepped in does not make the answer resolved).
func (db *DB) SetAnswerOutcome(ctx context.Context, id int64, outcome, by string, at time.Time) error {
	const op = "store.SetAnswerOutcome"
	if outcome != OutcomeResolved && outcome != OutcomeUnresolved {
		return rental.Errorf(op, rental.KindInvalid, "outcome must be resolved or unresolved, got %q", outcome)
	}
	err := db.Gorm.WithContext(ctx).Model(&kbAnswerRow{}).Where("id = ? AND outcome = ?", id, OutcomePending).
		Updates(map[string]any{"outcome": outcome, "outcome_by": by, "decided_at": at.UTC()}).Error
	return classify(op, err)
}

// AnswerFilter pages records newest first: pass the last ID of one page as
// Before to get the next.
type AnswerFilter struct {
	Outcome string // "" for all
	Handoff bool   // only handoffs
	Before  int64
	Limit   int // 1–200; 0 means 50
}

// AnswerRecords lists records for the owner's review, texts opened.
func (db *DB) AnswerRecords(ctx context.Context, f AnswerFilter) ([]AnswerRecord, error) {
	const op = "store.AnswerRecords"
	s, err := db.sealerFor(op)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q := db.Gorm.WithContext(ctx).Order("id DESC").Limit(min(limit, 200))
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if f.Handoff {
		q = q.Where("handoff <> ''")
	}
	var rows []kbAnswerRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, classify(op, err)
	}
	out := make([]AnswerRecord, len(rows))
	for i, r := range rows {
		question, err := s.open(r.Question, kbAnswerAD(r.Conversation, "question"))
		if err != nil {
			return nil, rental.Wrap(op, rental.KindInternal, "", err)
		}
		answer, err := s.open(r.Answer, kbAnswerAD(r.Conversation, "answer"))
		if err != nil {
			return nil, rental.Wrap(op, rental.KindInternal, "", err)
		}
		rec := AnswerRecord{ID: r.ID, Conversation: r.Conversation, Question: string(question), Answer: string(answer),
			Kind: r.Kind, Confidence: r.Confidence, Phrased: r.Phrased, ModelError: r.ModelError, Handoff: r.Handoff,
			Outcome: r.Outcome, OutcomeBy: r.OutcomeBy, CreatedAt: r.CreatedAt.UTC()}
		if r.DecidedAt != nil {
			t := r.DecidedAt.UTC()
			rec.DecidedAt = &t
		}
		if err := json.Unmarshal([]byte(r.Sources), &rec.Sources); err != nil {
			return nil, rental.Wrap(op, rental.KindInternal, "", err)
		}
		out[i] = rec
	}
	return out, nil
}

// AnswerStats sums the records since a time: the share the assistant
// could not resolve is Unresolved / (Resolved + Unresolved); Pending turns
// got no signal either way.
type AnswerStats struct {
	Total      int            `json:"total"`
	Answered   int            `json:"answered"`   // the assistant replied
	HandedOff  int            `json:"handed_off"` // it handed over instead
	Resolved   int            `json:"resolved"`
	Unresolved int            `json:"unresolved"`
	Pending    int            `json:"pending"`
	ByHandoff  map[string]int `json:"by_handoff"` // handoffs per reason
}

// AnswerStats counts the records created at or after since.
func (db *DB) AnswerStats(ctx context.Context, since time.Time) (AnswerStats, error) {
	var rows []struct {
		Handoff string
		Outcome string
		N       int
	}
	err := db.Gorm.WithContext(ctx).Model(&kbAnswerRow{}).Select("handoff, outcome, COUNT(*) AS n").
		Where("created_at >= ?", since.UTC()).Group("handoff, outcome").Scan(&rows).Error
	if err != nil {
		return AnswerStats{}, classify("store.AnswerStats", err)
	}
	st := AnswerStats{ByHandoff: map[string]int{}}
	for _, r := range rows {
		st.Total += r.N
		if r.Handoff == "" {
			st.Answered += r.N
		} else {
			st.HandedOff += r.N
			st.ByHandoff[r.Handoff] += r.N
		}
		switch r.Outcome {
		case OutcomeResolved:
			st.Resolved += r.N
		case OutcomeUnresolved:
			st.Unresolved += r.N
		default:
			st.Pending += r.N
		}
	}
	return st, nil
}
