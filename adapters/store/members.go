package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

type memberRow struct {
	ID         int64 `gorm:"primaryKey"`
	MemberNo   *string
	Name       string
	Phone      *string
	Tier       string
	Points     int64
	JoinedAt   time.Time
	MergedInto *int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func (memberRow) TableName() string { return "members" }

func (r memberRow) member() rental.Member {
	m := rental.Member{ID: rental.MemberID(r.ID), Name: r.Name, Tier: rental.Tier(r.Tier), Points: r.Points, JoinedAt: r.JoinedAt}
	if r.MemberNo != nil {
		m.MemberNo = *r.MemberNo
	}
	if r.Phone != nil {
		m.Phone = *r.Phone
	}
	return m
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type identityRow struct {
	ID        int64 `gorm:"primaryKey"`
	AppID     string
	OpenID    string `gorm:"column:openid"`
	UnionID   string `gorm:"column:unionid"`
	MemberID  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (identityRow) TableName() string { return "identities" }

func (r identityRow) identity() rental.Identity {
	return rental.Identity{ID: rental.IdentityID(r.ID), AppID: r.AppID, OpenID: r.OpenID, UnionID: r.UnionID, MemberID: rental.MemberID(r.MemberID), Created: r.CreatedAt}
}

type linkReviewRow struct {
	ID         int64 `gorm:"primaryKey"`
	IdentityID int64
	MemberID   int64
	Phone      string
	Status     string
	Reason     string
	DecidedBy  string
	CreatedAt  time.Time
	DecidedAt  *time.Time
}

func (linkReviewRow) TableName() string { return "link_reviews" }

type auditRow struct {
	ID         int64 `gorm:"primaryKey"`
	At         time.Time
	Actor      string
	Action     string
	MemberID   *int64
	IdentityID *int64
	OtherID    *int64
	Reason     string
	Detail     string
}

func (auditRow) TableName() string { return "link_audit" }

func i64(v int64) *int64 { return &v }

// memberEventTypes says which audit actions the shop's other membership
// system hears about, and as what.
var memberEventTypes = map[string]string{
	"identity.created":  "member.created",
	"member.created":    "member.created",
	"phone.set":         "member.updated",
	"identity.linked":   "member.linked",
	"identity.unlinked": "member.unlinked",
	"member.merged":     "member.merged",
}

// KindMemberDirectory is the outbox kind of member events.
const KindMemberDirectory = "member_directory"

// EmitMemberEvents makes link changes also enqueue events for the shop's
// other membership system (when one is configured).
func (db *DB) EmitMemberEvents(on bool) { db.memberEvents = on }

// audit appends one line to the link audit, inside tx, and with member
// events on, enqueues the event in the same transaction, keyed by the audit
// line so that it is delivered once.
func (db *DB) audit(tx *gorm.DB, actor, action string, member, identity, other int64, reason, detail string) error {
	row := auditRow{At: time.Now().UTC(), Actor: actor, Action: action, Reason: reason, Detail: detail}
	if member != 0 {
		row.MemberID = i64(member)
	}
	if identity != 0 {
		row.IdentityID = i64(identity)
	}
	if other != 0 {
		row.OtherID = i64(other)
	}
	if err := tx.Create(&row).Error; err != nil {
		return err
	}
	typ, ok := memberEventTypes[action]
	if !db.memberEvents || !ok || member == 0 {
		return nil
	}
	var mr memberRow
	if err := tx.Take(&mr, member).Error; err != nil {
		return err
	}
	ev := rental.MemberEvent{ID: "member-event-" + strconv.FormatInt(row.ID, 10), Type: typ, Member: mr.member(), At: row.At}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return db.enqueue(tx, KindMemberDirectory, ev.ID, payload)
}

// LoginWeChat returns the member a WeChat identity is linked to, creating a
// guest member and the identity at the first login. Concurrent first logins
// of one openid end in one identity (the unique key decides).
func (db *DB) LoginWeChat(ctx context.Context, appID, openID, unionID string) (rental.Member, rental.Identity, bool, error) {
	const op = "store.LoginWeChat"
	var (
		m       rental.Member
		id      rental.Identity
		created bool
	)
	for attempt := 0; attempt < 2; attempt++ {
		err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var ir identityRow
			err := tx.Where("app_id = ? AND openid = ?", appID, openID).Take(&ir).Error
			if err == nil {
				if unionID != "" && ir.UnionID != unionID {
					ir.UnionID = unionID
					if err := tx.Model(&ir).Updates(map[string]any{"unionid": unionID, "updated_at": time.Now().UTC()}).Error; err != nil {
						return err
					}
				}
				var mr memberRow
				if err := tx.Take(&mr, ir.MemberID).Error; err != nil {
					return err
				}
				m, id, created = mr.member(), ir.identity(), false
				return nil
			}
			if !errors.Is(err, gorm.ErrRecordNotFound) {
				return err
			}
			now := time.Now().UTC()
			mr := memberRow{Tier: string(rental.TierGuest), JoinedAt: now, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&mr).Error; err != nil {
				return err
			}
			ir = identityRow{AppID: appID, OpenID: openID, UnionID: unionID, MemberID: mr.ID, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&ir).Error; err != nil {
				return err
			}
			if err := db.audit(tx, "customer", "identity.created", mr.ID, ir.ID, 0, "first WeChat login", ""); err != nil {
				return err
			}
			m, id, created = mr.member(), ir.identity(), true
			return nil
		})
		if err == nil {
			return m, id, created, nil
		}
		if !isUniqueViolation(err) {
			return m, id, false, rental.Wrap(op, rental.KindUnavailable, "登录失败，请重试 (login failed, try again)", err)
		}
		// Another request created the identity meanwhile: read it.
	}
	return m, id, false, rental.Errorf(op, rental.KindConflict, "登录冲突，请重试 (concurrent login, try again)")
}

// isUniqueViolation recognises a unique-key conflict on either database.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(s, "UNIQUE constraint failed") ||
		strings.Contains(s, "duplicate key value") || strings.Contains(s, "SQLSTATE 23505")
}

// LinkOutcome is what proving a phone did.
type LinkOutcome struct {
	Action   rental.LinkAction
	Member   rental.Member // the member the caller's identity is linked to afterwards
	ReviewID int64         // set when Action is LinkReview
}

// ProvePhone applies a phone the customer proved (SMS code or the
// mini-program's phone button) to their WeChat identity, by the rules of
// rental.DecideLink, in one transaction.
func (db *DB) ProvePhone(ctx context.Context, identityID rental.IdentityID, phone, via string) (LinkOutcome, error) {
	const op = "store.ProvePhone"
	var out LinkOutcome
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ir identityRow
		if err := tx.Take(&ir, int64(identityID)).Error; err != nil {
			return err
		}
		var caller memberRow
		if err := tx.Take(&caller, ir.MemberID).Error; err != nil {
			return err
		}
		state := rental.LinkState{Caller: caller.member()}
		var n int64
		if err := tx.Model(&identityRow{}).Where("member_id = ?", caller.ID).Count(&n).Error; err != nil {
			return err
		}
		state.CallerIdentities = int(n)
		var owner memberRow
		err := tx.Where("phone = ? AND merged_into IS NULL", phone).Take(&owner).Error
		switch {
		case err == nil:
			om := owner.member()
			state.Owner = &om
			if err := tx.Model(&identityRow{}).Where("member_id = ?", owner.ID).Count(&n).Error; err != nil {
				return err
			}
			state.OwnerIdentities = int(n)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		out.Action = rental.DecideLink(state)
		now := time.Now().UTC()
		switch out.Action {
		case rental.LinkNothing:
			out.Member = caller.member()
		case rental.LinkSetPhone:
			if err := tx.Model(&caller).Updates(map[string]any{"phone": phone, "updated_at": now}).Error; err != nil {
				return err
			}
			caller.Phone = &phone
			out.Member = caller.member()
			return db.audit(tx, "customer", "phone.set", caller.ID, ir.ID, 0, "phone proven by "+via, rental.MaskPhone(phone))
		case rental.LinkMoveIdentity:
			if err := moveIdentities(tx, caller.ID, owner.ID, now); err != nil {
				return err
			}
			if err := tx.Model(&caller).Updates(map[string]any{"merged_into": owner.ID, "updated_at": now}).Error; err != nil {
				return err
			}
			out.Member = owner.member()
			return db.audit(tx, "customer", "identity.linked", owner.ID, ir.ID, caller.ID, "phone proven by "+via+"; guest account merged", rental.MaskPhone(phone))
		case rental.LinkReview:
			out.Member = caller.member()
			var existing linkReviewRow
			err := tx.Where("identity_id = ? AND member_id = ? AND status = ?", ir.ID, owner.ID, "pending").Take(&existing).Error
			if err == nil {
				out.ReviewID = existing.ID
				return nil
			}
			if !errors.Is(err, gorm.ErrRecordNotFound) {
				return err
			}
			rv := linkReviewRow{IdentityID: ir.ID, MemberID: owner.ID, Phone: phone, Status: "pending", CreatedAt: now}
			if err := tx.Create(&rv).Error; err != nil {
				return err
			}
			out.ReviewID = rv.ID
			return db.audit(tx, "customer", "link.review_requested", owner.ID, ir.ID, caller.ID, "phone proven by "+via+"; member already linked or both accounts real", rental.MaskPhone(phone))
		}
		return nil
	})
	if err != nil {
		if isUniqueViolation(err) {
			return out, rental.Wrap(op, rental.KindConflict, "该手机号刚被其他账户使用，请重试 (the phone was just taken, try again)", err)
		}
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return out, rental.Wrap(op, rental.KindNotFound, "账户不存在 (no such account)", err)
		}
		return out, rental.Wrap(op, rental.KindUnavailable, "", err)
	}
	return out, nil
}

// moveIdentities relinks every identity of member from to member to.
func moveIdentities(tx *gorm.DB, from, to int64, now time.Time) error {
	return tx.Model(&identityRow{}).Where("member_id = ?", from).Updates(map[string]any{"member_id": to, "updated_at": now}).Error
}

// LoginPhone returns the live member with this phone, creating a guest with
// it when there is none (login by SMS code without WeChat).
func (db *DB) LoginPhone(ctx context.Context, phone string) (rental.Member, bool, error) {
	const op = "store.LoginPhone"
	var (
		m       rental.Member
		created bool
	)
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var mr memberRow
		err := tx.Where("phone = ? AND merged_into IS NULL", phone).Take(&mr).Error
		if err == nil {
			m = mr.member()
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		now := time.Now().UTC()
		mr = memberRow{Phone: &phone, Tier: string(rental.TierGuest), JoinedAt: now, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&mr).Error; err != nil {
			return err
		}
		m, created = mr.member(), true
		return db.audit(tx, "customer", "member.created", mr.ID, 0, 0, "first SMS login", rental.MaskPhone(phone))
	})
	if err != nil {
		return m, false, rental.Wrap(op, rental.KindUnavailable, "登录失败，请重试 (login failed, try again)", err)
	}
	return m, created, nil
}

// Member reads a member; a merged member resolves to the one it was merged
// into.
func (db *DB) Member(ctx context.Context, id rental.MemberID) (rental.Member, error) {
	const op = "store.Member"
	for hops := 0; hops < 8; hops++ {
		var mr memberRow
		err := db.Gorm.WithContext(ctx).Take(&mr, int64(id)).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return rental.Member{}, rental.Errorf(op, rental.KindNotFound, "会员不存在 (no member %d)", id)
		}
		if err != nil {
			return rental.Member{}, rental.Wrap(op, rental.KindUnavailable, "", err)
		}
		if mr.MergedInto == nil {
			return mr.member(), nil
		}
		id = rental.MemberID(*mr.MergedInto)
	}
	return rental.Member{}, rental.Errorf(op, rental.KindInternal, "merge chain too long at member %d", id)
}

// MemberPage is one page of a member list.
type MemberPage struct {
	Members    []rental.Member `json:"members"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// ListMembers pages through live members, newest id last, optionally
// matching q against card number, name or phone. The cursor is opaque to
// callers (the last id seen).
func (db *DB) ListMembers(ctx context.Context, q, cursor string, limit int) (MemberPage, error) {
	const op = "store.ListMembers"
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var after int64
	if cursor != "" {
		if _, err := fmt.Sscan(cursor, &after); err != nil || after < 0 {
			return MemberPage{}, rental.Errorf(op, rental.KindInvalid, "cursor 无效 (bad cursor)")
		}
	}
	tx := db.Gorm.WithContext(ctx).Where("merged_into IS NULL AND id > ?", after)
	if q = strings.TrimSpace(q); q != "" {
		like := "%" + escapeLike(q) + "%"
		tx = tx.Where("member_no LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR phone LIKE ? ESCAPE '\\'", like, like, like)
	}
	var rows []memberRow
	if err := tx.Order("id").Limit(limit + 1).Find(&rows).Error; err != nil {
		return MemberPage{}, rental.Wrap(op, rental.KindUnavailable, "", err)
	}
	var page MemberPage
	for i, r := range rows {
		if i == limit {
			page.NextCursor = fmt.Sprint(rows[i-1].ID)
			break
		}
		page.Members = append(page.Members, r.member())
	}
	return page, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// IdentityMember returns the member a WeChat identity is linked to now.
func (db *DB) IdentityMember(ctx context.Context, id rental.IdentityID) (rental.Member, error) {
	var ir identityRow
	if err := db.Gorm.WithContext(ctx).Take(&ir, int64(id)).Error; err != nil {
		return rental.Member{}, classify("store.IdentityMember", err)
	}
	return db.Member(ctx, rental.MemberID(ir.MemberID))
}
