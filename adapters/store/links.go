package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// LinkReview is a proven phone waiting for (or decided by) the owner.
type LinkReview struct {
	ID         int64             `json:"id"`
	IdentityID rental.IdentityID `json:"identity_id"`
	Claimant   rental.Member     `json:"claimant"` // the member the identity is linked to now
	Holder     rental.Member     `json:"holder"`   // the member who has the phone
	Phone      string            `json:"phone"`    // masked
	Status     string            `json:"status"`
	Reason     string            `json:"reason,omitempty"`
	DecidedBy  string            `json:"decided_by,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	DecidedAt  *time.Time        `json:"decided_at,omitempty"`
}

// Review decisions.
const (
	DecisionLink   = "link"   // the identity moves to the phone's member (which may then have two WeChat identities)
	DecisionMerge  = "merge"  // the claimant's whole account is merged into the phone's member
	DecisionReject = "reject" // nothing changes
)

// ListLinkReviews pages through reviews with a status ("pending" by default).
func (db *DB) ListLinkReviews(ctx context.Context, status string, afterID int64, limit int) ([]LinkReview, error) {
	const op = "store.ListLinkReviews"
	if status == "" {
		status = "pending"
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var rows []linkReviewRow
	if err := db.Gorm.WithContext(ctx).Where("status = ? AND id > ?", status, afterID).Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "", err)
	}
	out := make([]LinkReview, 0, len(rows))
	for _, r := range rows {
		lr, err := db.linkReview(ctx, db.Gorm.WithContext(ctx), r)
		if err != nil {
			return nil, rental.Wrap(op, rental.KindUnavailable, "", err)
		}
		out = append(out, lr)
	}
	return out, nil
}

func (db *DB) linkReview(ctx context.Context, tx *gorm.DB, r linkReviewRow) (LinkReview, error) {
	var ir identityRow
	if err := tx.Take(&ir, r.IdentityID).Error; err != nil {
		return LinkReview{}, err
	}
	claimant, err := db.Member(ctx, rental.MemberID(ir.MemberID))
	if err != nil {
		return LinkReview{}, err
	}
	holder, err := db.Member(ctx, rental.MemberID(r.MemberID))
	if err != nil {
		return LinkReview{}, err
	}
	return LinkReview{ID: r.ID, IdentityID: rental.IdentityID(r.IdentityID), Claimant: claimant, Holder: holder,
		Phone: rental.MaskPhone(r.Phone), Status: r.Status, Reason: r.Reason, DecidedBy: r.DecidedBy, CreatedAt: r.CreatedAt, DecidedAt: r.DecidedAt}, nil
}

// DecideLinkReview carries out the owner's decision on a pending review,
// with a reason that goes into the audit log.
func (db *DB) DecideLinkReview(ctx context.Context, id int64, decision, actor, reason string) (LinkReview, error) {
	const op = "store.DecideLinkReview"
	if reason == "" {
		return LinkReview{}, rental.Errorf(op, rental.KindInvalid, "请填写原因 (a reason is required)")
	}
	var out linkReviewRow
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rv linkReviewRow
		if err := tx.Take(&rv, id).Error; err != nil {
			return err
		}
		if rv.Status != "pending" {
			return rental.Errorf(op, rental.KindConflict, "该申请已处理（%s） (already decided: %s)", rv.Status, rv.Status)
		}
		var ir identityRow
		if err := tx.Take(&ir, rv.IdentityID).Error; err != nil {
			return err
		}
		now := time.Now().UTC()
		switch decision {
		case DecisionLink:
			if err := tx.Model(&ir).Updates(map[string]any{"member_id": rv.MemberID, "updated_at": now}).Error; err != nil {
				return err
			}
			if err := db.audit(tx, "owner:"+actor, "identity.linked", rv.MemberID, ir.ID, ir.MemberID, reason, "review "+strconv.FormatInt(rv.ID, 10)); err != nil {
				return err
			}
		case DecisionMerge:
			if ir.MemberID == rv.MemberID {
				break
			}
			if err := mergeMembers(tx, ir.MemberID, rv.MemberID, now); err != nil {
				return err
			}
			if err := db.audit(tx, "owner:"+actor, "member.merged", rv.MemberID, ir.ID, ir.MemberID, reason, "review "+strconv.FormatInt(rv.ID, 10)); err != nil {
				return err
			}
		case DecisionReject:
			if err := db.audit(tx, "owner:"+actor, "link.rejected", rv.MemberID, ir.ID, ir.MemberID, reason, "review "+strconv.FormatInt(rv.ID, 10)); err != nil {
				return err
			}
		default:
			return rental.Errorf(op, rental.KindInvalid, "decision must be link, merge or reject")
		}
		status := map[string]string{DecisionLink: "linked", DecisionMerge: "merged", DecisionReject: "rejected"}[decision]
		rv.Status, rv.Reason, rv.DecidedBy, rv.DecidedAt = status, reason, actor, &now
		if err := tx.Save(&rv).Error; err != nil {
			return err
		}
		out = rv
		return nil
	})
	if err != nil {
		return LinkReview{}, classify(op, err)
	}
	return db.linkReview(ctx, db.Gorm.WithContext(ctx), out)
}

// mergeMembers folds member from into member into: identities move, points
// add up, from is marked merged (its phone is then free in the unique index).
func mergeMembers(tx *gorm.DB, from, into int64, now time.Time) error {
	var src memberRow
	if err := tx.Take(&src, from).Error; err != nil {
		return err
	}
	if err := moveIdentities(tx, from, into, now); err != nil {
		return err
	}
	if err := tx.Model(&memberRow{}).Where("id = ?", into).
		Updates(map[string]any{"points": gorm.Expr("points + ?", src.Points), "updated_at": now}).Error; err != nil {
		return err
	}
	return tx.Model(&src).Updates(map[string]any{"merged_into": into, "updated_at": now}).Error
}

// Unlink detaches a WeChat identity from its member; the identity gets a
// fresh guest account, so the customer can still log in but sees nothing of
// the member's.
func (db *DB) Unlink(ctx context.Context, identityID rental.IdentityID, actor, reason string) (rental.Member, error) {
	const op = "store.Unlink"
	if reason == "" {
		return rental.Member{}, rental.Errorf(op, rental.KindInvalid, "请填写原因 (a reason is required)")
	}
	var guest memberRow
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ir identityRow
		if err := tx.Take(&ir, int64(identityID)).Error; err != nil {
			return err
		}
		now := time.Now().UTC()
		guest = memberRow{Tier: string(rental.TierGuest), JoinedAt: now, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&guest).Error; err != nil {
			return err
		}
		if err := tx.Model(&ir).Updates(map[string]any{"member_id": guest.ID, "updated_at": now}).Error; err != nil {
			return err
		}
		return db.audit(tx, "owner:"+actor, "identity.unlinked", ir.MemberID, ir.ID, guest.ID, reason, "")
	})
	if err != nil {
		return rental.Member{}, classify(op, err)
	}
	return guest.member(), nil
}

// AuditEntry is one line of the link audit.
type AuditEntry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	MemberID   *int64    `json:"member_id,omitempty"`
	IdentityID *int64    `json:"identity_id,omitempty"`
	OtherID    *int64    `json:"other_id,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// LinkAudit lists the audit lines about a member (0: all), oldest first.
func (db *DB) LinkAudit(ctx context.Context, member rental.MemberID, afterID int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	tx := db.Gorm.WithContext(ctx).Where("id > ?", afterID)
	if member != 0 {
		tx = tx.Where("member_id = ? OR other_id = ?", int64(member), int64(member))
	}
	var rows []auditRow
	if err := tx.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, rental.Wrap("store.LinkAudit", rental.KindUnavailable, "", err)
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry(r)
	}
	return out, nil
}

// classify maps storage errors to kinds: a rental.Error passes through.
func classify(op string, err error) error {
	var re *rental.Error
	switch {
	case errors.As(err, &re):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return rental.Wrap(op, rental.KindNotFound, "找不到 (not found)", err)
	case isUniqueViolation(err):
		return rental.Wrap(op, rental.KindConflict, "与现有记录冲突 (conflicts with an existing record)", err)
	}
	return rental.Wrap(op, rental.KindUnavailable, "", err)
}
