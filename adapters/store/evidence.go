package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tacklegate/tacklegate/rental"
)

var _ rental.EvidenceStore = (*DB)(nil)

type evidenceHeadRow struct {
	OrderID   int64 `gorm:"primaryKey;autoIncrement:false"`
	ItemCount int
	Link      string
}

func (evidenceHeadRow) TableName() string { return "evidence_heads" }

type evidenceRow struct {
	ID          int64 `gorm:"primaryKey"`
	OrderID     int64
	Seq         int
	Kind        string
	MediaType   string
	Name        string
	Ref         string
	Actor       string
	CreatedAt   time.Time
	SizeBytes   int64
	IsExternal  bool
	Content     []byte // sealed; nil for external items
	ContentHash string
	PrevLink    string
	Link        string
}

func (evidenceRow) TableName() string { return "evidence" }

type inspectionRow struct {
	ID                int64 `gorm:"primaryKey"`
	OrderID           int64
	Kind              string
	Staff             string
	InspectedAt       time.Time
	Notes             string
	EvidenceID        int64
	ConfirmedAt       *time.Time
	ConfirmedBy       *int64
	ConfirmEvidenceID *int64
}

func (inspectionRow) TableName() string { return "inspections" }

type inspectionUnitRow struct {
	InspectionID int64 `gorm:"primaryKey;autoIncrement:false"`
	UnitID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Condition    string
	Notes        string
	Photos       string // JSON array of evidence ids
}

func (inspectionUnitRow) TableName() string { return "inspection_units" }

// evidenceAD binds sealed content to its place in the chain: moved to
// another order or position, it no longer opens.
func evidenceAD(order rental.OrderID, seq int) []byte {
	return []byte("evidence\x00" + strconv.FormatInt(int64(order), 10) + "\x00" + strconv.Itoa(seq))
}

// AppendEvidence chains e after the order's last item and stores it with
// its content sealed. e's chain fields and ID are set.
func (db *DB) AppendEvidence(ctx context.Context, e *rental.Evidence) error {
	const op = "store.AppendEvidence"
	s, err := db.sealerFor(op)
	if err != nil {
		return err
	}
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return db.appendEvidence(tx, s, e)
	})
	return rentalErr(op, err)
}

// appendEvidence does the work of AppendEvidence inside tx. The order's
// head row is created if missing and then locked (PostgreSQL; SQLite's
// writer is alone anyway), so two appends to one order take turns and each
// links to the other's result.
func (db *DB) appendEvidence(tx *gorm.DB, s *sealer, e *rental.Evidence) error {
	const op = "store.AppendEvidence"
	var n int64
	if err := tx.Model(&orderRow{}).Where("id = ?", e.OrderID).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return rental.Errorf(op, rental.KindNotFound, "订单不存在 (no such order)")
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&evidenceHeadRow{OrderID: int64(e.OrderID), Link: rental.GenesisLink}).Error; err != nil {
		return err
	}
	var head evidenceHeadRow
	if err := db.lockForUpdate(tx.Where("order_id = ?", e.OrderID)).Take(&head).Error; err != nil {
		return err
	}
	next, err := e.Chain(rental.ChainHead{Count: head.ItemCount, Link: head.Link})
	if err != nil {
		return err
	}
	row := evidenceRow{
		OrderID: int64(e.OrderID), Seq: e.Seq, Kind: string(e.Kind), MediaType: e.MediaType, Name: e.Name, Ref: e.Ref,
		Actor: string(e.Actor), CreatedAt: e.CreatedAt, SizeBytes: e.Size, IsExternal: e.External,
		ContentHash: e.ContentHash, PrevLink: e.PrevLink, Link: e.Link,
	}
	if !e.External {
		row.Content = s.seal(e.Content, evidenceAD(e.OrderID, e.Seq))
	}
	if err := tx.Create(&row).Error; err != nil {
		return err
	}
	if err := tx.Model(&evidenceHeadRow{}).Where("order_id = ?", e.OrderID).
		Updates(map[string]any{"item_count": next.Count, "link": next.Link}).Error; err != nil {
		return err
	}
	e.ID = rental.EvidenceID(row.ID)
	return nil
}

// Evidence returns an order's chain, contents opened, and its head. An item
// whose sealed content does not open comes back Unreadable, so that
// VerifyChain reports where the stored bytes were altered.
func (db *DB) Evidence(ctx context.Context, order rental.OrderID) ([]rental.Evidence, rental.ChainHead, error) {
	const op = "store.Evidence"
	s, err := db.sealerFor(op)
	if err != nil {
		return nil, rental.ChainHead{}, err
	}
	g := db.Gorm.WithContext(ctx)
	head := rental.ChainHead{Link: rental.GenesisLink}
	var hr evidenceHeadRow
	err = g.Where("order_id = ?", order).Take(&hr).Error
	switch {
	case err == nil:
		head = rental.ChainHead{Count: hr.ItemCount, Link: hr.Link}
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return nil, head, rentalErr(op, err)
	}
	var rows []evidenceRow
	if err := g.Where("order_id = ?", order).Order("seq, id").Find(&rows).Error; err != nil {
		return nil, head, rentalErr(op, err)
	}
	out := make([]rental.Evidence, len(rows))
	for i, r := range rows {
		out[i] = r.evidence(s)
	}
	return out, head, nil
}

// EvidenceItem reads one item with its content opened, for showing a
// photo. It does not verify the chain.
func (db *DB) EvidenceItem(ctx context.Context, id rental.EvidenceID) (rental.Evidence, error) {
	const op = "store.EvidenceItem"
	s, err := db.sealerFor(op)
	if err != nil {
		return rental.Evidence{}, err
	}
	var r evidenceRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return rental.Evidence{}, rentalErr(op, err)
	}
	e := r.evidence(s)
	if e.Unreadable {
		return e, rental.Wrap(op, rental.KindInternal, "证据文件已被改动，无法打开 (the stored evidence was altered)", errSealed)
	}
	return e, nil
}

func (r evidenceRow) evidence(s *sealer) rental.Evidence {
	e := rental.Evidence{
		ID: rental.EvidenceID(r.ID), OrderID: rental.OrderID(r.OrderID), Seq: r.Seq, Kind: rental.EvidenceKind(r.Kind),
		MediaType: r.MediaType, Name: r.Name, Ref: r.Ref, Actor: rental.Actor(r.Actor), CreatedAt: r.CreatedAt.UTC(),
		External: r.IsExternal, Size: r.SizeBytes, ContentHash: r.ContentHash, PrevLink: r.PrevLink, Link: r.Link,
	}
	if !r.IsExternal {
		plain, err := s.open(r.Content, evidenceAD(e.OrderID, e.Seq))
		if err != nil {
			e.Unreadable = true
		} else {
			e.Content = plain
		}
	}
	return e
}

// SaveInspection validates an inspection against its order, chains its
// record into the order's evidence, stores it and records each unit's
// condition (a damaged unit goes to maintenance). One pickup and one
// return inspection per order.
func (db *DB) SaveInspection(ctx context.Context, in *rental.Inspection) error {
	const op = "store.SaveInspection"
	s, err := db.sealerFor(op)
	if err != nil {
		return err
	}
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		orders, err := loadOrders(tx, tx.Where("id = ?", in.OrderID))
		if err != nil {
			return err
		}
		if len(orders) == 0 {
			return rental.Errorf(op, rental.KindNotFound, "订单不存在 (no such order)")
		}
		if err := in.Validate(orders[0]); err != nil {
			return err
		}
		var dup int64
		if err := tx.Model(&inspectionRow{}).Where("order_id = ? AND kind = ?", in.OrderID, string(in.Kind)).Count(&dup).Error; err != nil {
			return err
		}
		if dup > 0 {
			return rental.Errorf(op, rental.KindConflict, "此订单已有%s验货记录 (the order already has a %s inspection)", inspectionLabel(in.Kind), in.Kind)
		}
		if err := checkPhotos(tx, in); err != nil {
			return err
		}
		in.At = in.At.UTC().Truncate(time.Microsecond)
		rec := rental.Evidence{
			OrderID: in.OrderID, Kind: rental.EvidenceInspection, MediaType: "application/json",
			Name: string(in.Kind) + " inspection", Actor: in.Staff, CreatedAt: in.At, Content: in.Record(),
		}
		if err := db.appendEvidence(tx, s, &rec); err != nil {
			return err
		}
		row := inspectionRow{OrderID: int64(in.OrderID), Kind: string(in.Kind), Staff: string(in.Staff), InspectedAt: in.At,
			Notes: in.Notes, EvidenceID: int64(rec.ID)}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		units := make([]inspectionUnitRow, len(in.Units))
		for i, u := range in.Units {
			photos := u.Photos
			if photos == nil {
				photos = []rental.EvidenceID{}
			}
			b, _ := json.Marshal(photos)
			units[i] = inspectionUnitRow{InspectionID: row.ID, UnitID: int64(u.UnitID), Condition: string(u.Condition), Notes: u.Notes, Photos: string(b)}
			if err := recordCondition(tx, u.UnitID, u.Condition, in.At); err != nil {
				return err
			}
		}
		if err := tx.Create(&units).Error; err != nil {
			return err
		}
		in.ID, in.EvidenceID = rental.InspectionID(row.ID), rec.ID
		return nil
	})
	return rentalErr(op, err)
}

func inspectionLabel(k rental.InspectionKind) string {
	if k == rental.InspectionPickup {
		return "取货"
	}
	return "归还"
}

// checkPhotos makes sure every photo an inspection cites is a photo in the
// same order's evidence.
func checkPhotos(tx *gorm.DB, in *rental.Inspection) error {
	var ids []int64
	for _, u := range in.Units {
		for _, p := range u.Photos {
			ids = append(ids, int64(p))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var found []int64
	if err := tx.Model(&evidenceRow{}).Where("order_id = ? AND kind = ? AND id IN ?", in.OrderID, string(rental.EvidencePhoto), ids).
		Pluck("id", &found).Error; err != nil {
		return err
	}
	ok := map[int64]bool{}
	for _, id := range found {
		ok[id] = true
	}
	for _, id := range ids {
		if !ok[id] {
			return rental.Errorf("store.SaveInspection", rental.KindInvalid, "照片 %d 不是此订单的证据 (photo %d is not evidence of this order)", id, id)
		}
	}
	return nil
}

func recordCondition(tx *gorm.DB, id rental.UnitID, c rental.Condition, at time.Time) error {
	var r unitRow
	if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
		return err
	}
	u := r.unit()
	u.Inspected(c)
	return tx.Model(&unitRow{}).Where("id = ?", id).Updates(map[string]any{
		"condition": string(u.Condition), "status": string(u.Status), "updated_at": at,
	}).Error
}

// ConfirmInspection records that the order's customer confirmed an
// inspection. The confirmation is chained too and names the record it
// confirms by link. Confirming again changes nothing.
func (db *DB) ConfirmInspection(ctx context.Context, id rental.InspectionID, m rental.MemberID, at time.Time) (*rental.Inspection, error) {
	const op = "store.ConfirmInspection"
	s, err := db.sealerFor(op)
	if err != nil {
		return nil, err
	}
	var out *rental.Inspection
	err = db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ins, err := loadInspections(tx, tx.Where("id = ?", id))
		if err != nil {
			return err
		}
		if len(ins) == 0 {
			return rental.Errorf(op, rental.KindNotFound, "验货记录不存在 (no such inspection)")
		}
		in := &ins[0]
		var owner orderRow
		if err := tx.Select("id", "member_id").Where("id = ?", in.OrderID).Take(&owner).Error; err != nil {
			return err
		}
		if rental.MemberID(owner.MemberID) != m {
			return rental.Errorf(op, rental.KindForbidden, "只能确认自己订单的验货 (only the order's customer can confirm)")
		}
		if in.Confirmed() {
			out = in
			return nil
		}
		var rec evidenceRow
		if err := tx.Select("id", "link").Where("id = ?", in.EvidenceID).Take(&rec).Error; err != nil {
			return err
		}
		at = at.UTC().Truncate(time.Microsecond)
		conf := rental.Evidence{
			OrderID: in.OrderID, Kind: rental.EvidenceConfirmation, MediaType: "application/json",
			Name: string(in.Kind) + " confirmation", Actor: rental.MemberActor(m), CreatedAt: at,
			Content: rental.ConfirmationRecord(in, rec.Link, m, at),
		}
		if err := db.appendEvidence(tx, s, &conf); err != nil {
			return err
		}
		res := tx.Model(&inspectionRow{}).Where("id = ? AND confirmed_at IS NULL", id).Updates(map[string]any{
			"confirmed_at": at, "confirmed_by": int64(m), "confirm_evidence_id": int64(conf.ID),
		})
		if res.Error != nil {
			return res.Error
		}
		in.ConfirmedAt, in.ConfirmedBy, in.ConfirmEvidenceID = at, m, conf.ID
		out = in
		return nil
	})
	return out, rentalErr(op, err)
}

// Inspections lists an order's inspections, pickup first.
func (db *DB) Inspections(ctx context.Context, order rental.OrderID) ([]rental.Inspection, error) {
	g := db.Gorm.WithContext(ctx)
	ins, err := loadInspections(g, g.Where("order_id = ?", order).Order("id"))
	return ins, rentalErr("store.Inspections", err)
}

func loadInspections(g, q *gorm.DB) ([]rental.Inspection, error) {
	var rows []inspectionRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(rows))
	out := make([]rental.Inspection, len(rows))
	idx := map[int64]int{}
	for i, r := range rows {
		ids[i], idx[r.ID] = r.ID, i
		out[i] = rental.Inspection{
			ID: rental.InspectionID(r.ID), OrderID: rental.OrderID(r.OrderID), Kind: rental.InspectionKind(r.Kind),
			Staff: rental.Actor(r.Staff), At: r.InspectedAt.UTC(), Notes: r.Notes, EvidenceID: rental.EvidenceID(r.EvidenceID),
			ConfirmedAt: timeVal(r.ConfirmedAt),
		}
		if r.ConfirmedBy != nil {
			out[i].ConfirmedBy = rental.MemberID(*r.ConfirmedBy)
		}
		if r.ConfirmEvidenceID != nil {
			out[i].ConfirmEvidenceID = rental.EvidenceID(*r.ConfirmEvidenceID)
		}
	}
	var units []inspectionUnitRow
	if err := g.Where("inspection_id IN ?", ids).Order("inspection_id, unit_id").Find(&units).Error; err != nil {
		return nil, err
	}
	for _, u := range units {
		ui := rental.UnitInspection{UnitID: rental.UnitID(u.UnitID), Condition: rental.Condition(u.Condition), Notes: u.Notes}
		if err := json.Unmarshal([]byte(u.Photos), &ui.Photos); err != nil {
			return nil, err
		}
		in := &out[idx[u.InspectionID]]
		in.Units = append(in.Units, ui)
	}
	return out, nil
}
