package store

import (
	"context"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// Guard-rail KPIs: each counts, per member, outcomes over a window, and
// which of them were bad. A cohort is worse when its share of bad outcomes
// is higher.
const (
	// KPICallConnect: calls started; bad = never answered.
	KPICallConnect = "call_connect_rate"
	// KPIAssistantUnresolved: assistant turns decided; bad = unresolved.
	KPIAssistantUnresolved = "assistant_unresolved"
	// KPILowRating: ratings of conversations and calls; bad = 1 or 2 stars.
	KPILowRating = "low_rating"
)

// GuardKPIs are the KPIs a flag's guard rail can watch.
var GuardKPIs = []string{KPICallConnect, KPIAssistantUnresolved, KPILowRating}

// FeatureSample is one member's outcomes on a KPI over a window.
type FeatureSample struct {
	MemberID int64
	Tier     string
	Bad      int
	Total    int
}

// FeatureSamples counts kpi's outcomes per member in [from, to).
func (db *DB) FeatureSamples(ctx context.Context, kpi string, from, to time.Time) ([]FeatureSample, error) {
	const op = "store.FeatureSamples"
	var q string
	switch kpi {
	case KPICallConnect:
		q = `SELECT c.member_id AS member_id, m.tier AS tier,
		        SUM(CASE WHEN c.answered_at IS NULL THEN 1 ELSE 0 END) AS bad, COUNT(*) AS total
		     FROM calls c JOIN members m ON m.id = c.member_id
		     WHERE c.started_at >= ? AND c.started_at < ? AND c.state <> 'ringing'
		     GROUP BY c.member_id, m.tier`
	case KPIAssistantUnresolved:
		q = `SELECT v.member_id AS member_id, m.tier AS tier,
		        SUM(CASE WHEN k.outcome = 'unresolved' THEN 1 ELSE 0 END) AS bad, COUNT(*) AS total
		     FROM kb_answers k JOIN conversations v ON CAST(v.id AS TEXT) = k.conversation
		     JOIN members m ON m.id = v.member_id
		     WHERE k.created_at >= ? AND k.created_at < ? AND k.outcome IN ('resolved', 'unresolved')
		     GROUP BY v.member_id, m.tier`
	case KPILowRating:
		q = `SELECT r.member_id AS member_id, m.tier AS tier,
		        SUM(CASE WHEN r.rating <= 2 THEN 1 ELSE 0 END) AS bad, COUNT(*) AS total
		     FROM (SELECT member_id, rating FROM conversations WHERE rating > 0 AND rated_at >= ? AND rated_at < ?
		           UNION ALL
		           SELECT member_id, rating FROM calls WHERE rating > 0 AND member_id IS NOT NULL AND started_at >= ? AND started_at < ?) r
		     JOIN members m ON m.id = r.member_id
		     GROUP BY r.member_id, m.tier`
	default:
		return nil, rental.Errorf(op, rental.KindInvalid, "unknown guard KPI %q", kpi)
	}
	args := []any{from.UTC(), to.UTC()}
	if kpi == KPILowRating {
		args = append(args, from.UTC(), to.UTC())
	}
	var out []FeatureSample
	if err := db.Gorm.WithContext(ctx).Raw(q, args...).Scan(&out).Error; err != nil {
		return nil, classify(op, err)
	}
	return out, nil
}
