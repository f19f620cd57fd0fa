package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tacklegate/tacklegate/rental"
)

// MemberImport is one row of the shop's membership export, already parsed
// and validated for its own sake (adapters/members does that).
type MemberImport struct {
	Line     int // in the file, for error messages
	MemberNo string
	Name     string
	Phone    string // normalized, or ""
	Tier     rental.Tier
	Points   int64
	JoinedAt time.Time
}

// ImportReport says what an import did.
type ImportReport struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// RowError is a row the database refused.
type RowError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// ImportErrors lists every refused row; nothing was imported.
type ImportErrors struct{ Rows []RowError }

func (e *ImportErrors) Error() string {
	return fmt.Sprintf("%d rows refused; nothing was imported", len(e.Rows))
}

// ImportMembers upserts members by card number in one transaction: a re-run
// of the same file changes nothing; a file with a bad row imports nothing.
// progress, if set, is called as rows are processed.
func (db *DB) ImportMembers(ctx context.Context, rows []MemberImport, progress func(done, total int)) (ImportReport, error) {
	const op = "store.ImportMembers"
	var rep ImportReport
	if progress == nil {
		progress = func(int, int) {}
	}
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Existing members by card number and live phones, read in chunks so
		// a large file does not become one enormous IN list.
		byNo := map[string]memberRow{}
		phoneOwner := map[string]memberRow{}
		const chunk = 500
		for i := 0; i < len(rows); i += chunk {
			end := min(i+chunk, len(rows))
			nos := make([]string, 0, end-i)
			phones := make([]string, 0, end-i)
			for _, r := range rows[i:end] {
				nos = append(nos, r.MemberNo)
				if r.Phone != "" {
					phones = append(phones, r.Phone)
				}
			}
			var found []memberRow
			if err := tx.Where("member_no IN ?", nos).Find(&found).Error; err != nil {
				return err
			}
			for _, m := range found {
				byNo[*m.MemberNo] = m
			}
			if len(phones) > 0 {
				found = nil
				if err := tx.Where("phone IN ? AND merged_into IS NULL", phones).Find(&found).Error; err != nil {
					return err
				}
				for _, m := range found {
					phoneOwner[*m.Phone] = m
				}
			}
		}
		var bad []RowError
		var inserts []memberRow
		now := time.Now().UTC()
		for i, r := range rows {
			if i%200 == 0 {
				progress(i, len(rows))
			}
			if r.Phone != "" {
				if owner, ok := phoneOwner[r.Phone]; ok && (owner.MemberNo == nil || *owner.MemberNo != r.MemberNo) {
					who := "an online account"
					if owner.MemberNo != nil {
						who = "member " + *owner.MemberNo
					}
					bad = append(bad, RowError{Line: r.Line, Message: fmt.Sprintf("手机号 %s 已属于%s (phone already belongs to %s)", rental.MaskPhone(r.Phone), who, who)})
					continue
				}
			}
			existing, ok := byNo[r.MemberNo]
			if !ok {
				inserts = append(inserts, memberRow{MemberNo: strPtr(r.MemberNo), Name: r.Name, Phone: strPtr(r.Phone), Tier: string(r.Tier),
					Points: r.Points, JoinedAt: r.JoinedAt.UTC(), CreatedAt: now, UpdatedAt: now})
				continue
			}
			changes := map[string]any{}
			if existing.Name != r.Name {
				changes["name"] = r.Name
			}
			if oldPhone := derefStr(existing.Phone); oldPhone != r.Phone && r.Phone != "" {
				changes["phone"] = r.Phone
			}
			if existing.Tier != string(r.Tier) {
				changes["tier"] = string(r.Tier)
			}
			if existing.Points != r.Points {
				changes["points"] = r.Points
			}
			if !existing.JoinedAt.Equal(r.JoinedAt) {
				changes["joined_at"] = r.JoinedAt.UTC()
			}
			if len(changes) == 0 {
				rep.Unchanged++
				continue
			}
			changes["updated_at"] = now
			if err := tx.Model(&memberRow{}).Where("id = ?", existing.ID).Updates(changes).Error; err != nil {
				if isUniqueViolation(err) {
					bad = append(bad, RowError{Line: r.Line, Message: "与现有会员冲突 (conflicts with an existing member)"})
					continue
				}
				return err
			}
			rep.Updated++
		}
		if len(bad) > 0 {
			return &ImportErrors{Rows: bad}
		}
		if len(inserts) > 0 {
			if err := tx.CreateInBatches(inserts, 200).Error; err != nil {
				return err
			}
			rep.Created = len(inserts)
		}
		progress(len(rows), len(rows))
		return db.audit(tx, "owner", "members.imported", 0, 0, 0, "",
			fmt.Sprintf("created %d, updated %d, unchanged %d", rep.Created, rep.Updated, rep.Unchanged))
	})
	if err != nil {
		if ie, ok := err.(*ImportErrors); ok {
			return ImportReport{}, ie
		}
		return ImportReport{}, classify(op, err)
	}
	return rep, nil
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
