package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// paidOrder places and pays an order for n rods.
func paidOrder(t *testing.T, db *store.DB, n int) (*rental.Order, *testClock) {
	t.Helper()
	ctx := context.Background()
	shop, clock := shopOn(db)
	rod, _ := seedItem(t, db, "rod", n, rental.Yuan(15), rental.Yuan(200))
	o, err := shop.PlaceOrder(ctx, customer(7), []rental.ItemQuantity{{Item: rod.ID, Quantity: n}}, period(t, "2026-05-01", "2026-05-03"))
	if err != nil {
		t.Fatal(err)
	}
	pay, _ := o.StartPayment(rental.MemberActor(7), clock.Now())
	if _, err := o.PaymentSucceeded(pay.OutTradeNo, "tx", pay.Amount, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	return o, clock
}

func addPhoto(t *testing.T, db *store.DB, o rental.OrderID, name string, at time.Time) rental.Evidence {
	t.Helper()
	e := rental.Evidence{OrderID: o, Kind: rental.EvidencePhoto, MediaType: "image/jpeg", Name: name,
		Ref: "inbound:" + name, Actor: rental.StaffActor("li"), CreatedAt: at, Content: []byte("\xff\xd8 jpeg of " + name)}
	if err := db.AppendEvidence(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func verify(t *testing.T, db *store.DB, o rental.OrderID) *rental.ChainBreak {
	t.Helper()
	items, head, err := db.Evidence(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rental.VerifyChainHead(items, head)
}

func TestEvidenceChainStored(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			o, clock := paidOrder(t, db, 1)
			var photos []rental.Evidence
			for i := range 4 {
				photos = append(photos, addPhoto(t, db, o.ID, fmt.Sprintf("p%d.jpg", i), clock.Now().Add(time.Duration(i)*time.Second+123456789)))
			}
			items, head, err := db.Evidence(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 4 || head.Count != 4 || head.Link != photos[3].Link || !bytes.Equal(items[2].Content, photos[2].Content) || items[2].Ref != "inbound:p2.jpg" {
				t.Fatalf("stored chain: %d items, head %+v", len(items), head)
			}
			if b := rental.VerifyChainHead(items, head); b != nil {
				t.Fatalf("intact chain: %v", b)
			}
			got, err := db.EvidenceItem(ctx, photos[1].ID)
			if err != nil || !bytes.Equal(got.Content, photos[1].Content) {
				t.Fatalf("EvidenceItem: %v", err)
			}
			// Content is sealed at rest.
			var raw []byte
			db.SQL.QueryRow(rebind(db, "SELECT content FROM evidence WHERE id = ?"), photos[1].ID).Scan(&raw)
			if bytes.Contains(raw, []byte("jpeg of")) {
				t.Fatal("photo stored in clear")
			}
			// Appending to an unknown order is refused.
			bad := rental.Evidence{OrderID: 99999, Kind: rental.EvidenceNote, Actor: "staff:li", CreatedAt: clock.Now(), Content: []byte("x")}
			if err := db.AppendEvidence(ctx, &bad); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("evidence for an unknown order: %v", err)
			}
		})
	}
}

// TestEvidenceTamperingInDatabase edits the stored rows the ways an
// insider could, and checks each is found at the item touched.
func TestEvidenceTamperingInDatabase(t *testing.T) {
	type tamper struct {
		name   string
		do     func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error
		index  int
		reason rental.BreakReason
	}
	exec := func(db *store.DB, q string, args ...any) error { return db.Gorm.Exec(q, args...).Error }
	cases := []tamper{
		{"stored photo bytes altered", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			var raw []byte
			if err := db.SQL.QueryRow(rebind(db, "SELECT content FROM evidence WHERE id = ?"), ids[1]).Scan(&raw); err != nil {
				return err
			}
			raw[len(raw)-1] ^= 1
			return exec(db, "UPDATE evidence SET content = ? WHERE id = ?", raw, ids[1])
		}, 1, rental.BreakUnreadable},
		{"photo replaced by someone holding the data key", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			return exec(db, "UPDATE evidence SET content = ? WHERE id = ?", db.ResealEvidence([]byte("a nicer photo"), o, 2), ids[1])
		}, 1, rental.BreakContent},
		{"photo and its hash replaced", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			c := []byte("a nicer photo")
			return exec(db, "UPDATE evidence SET content = ?, content_hash = ?, size_bytes = ? WHERE id = ?", db.ResealEvidence(c, o, 2), rental.ContentHash(c), len(c), ids[1])
		}, 1, rental.BreakRecord},
		{"metadata edited", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			return exec(db, "UPDATE evidence SET actor = 'staff:wang' WHERE id = ?", ids[2])
		}, 2, rental.BreakRecord},
		{"time edited", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			var at time.Time
			db.Gorm.Raw("SELECT created_at FROM evidence WHERE id = ?", ids[0]).Scan(&at)
			return exec(db, "UPDATE evidence SET created_at = ? WHERE id = ?", at.Add(-time.Hour).UTC(), ids[0])
		}, 0, rental.BreakRecord},
		{"middle item deleted", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			return exec(db, "DELETE FROM evidence WHERE id = ?", ids[1])
		}, 1, rental.BreakMissing},
		{"last item deleted", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			return exec(db, "DELETE FROM evidence WHERE id = ?", ids[3])
		}, 3, rental.BreakMissing},
		{"last item deleted and head rewound", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			if err := exec(db, "DELETE FROM evidence WHERE id = ?", ids[3]); err != nil {
				return err
			}
			// Without the head this would pass: the chain itself is intact.
			return exec(db, "UPDATE evidence_heads SET item_count = 3 WHERE order_id = ?", o)
		}, 2, rental.BreakHead},
		{"two items reordered", func(db *store.DB, o rental.OrderID, ids []rental.EvidenceID) error {
			if err := exec(db, "UPDATE evidence SET seq = 100 WHERE id = ?", ids[1]); err != nil {
				return err
			}
			if err := exec(db, "UPDATE evidence SET seq = 2 WHERE id = ?", ids[2]); err != nil {
				return err
			}
			return exec(db, "UPDATE evidence SET seq = 3 WHERE id = ?", ids[1])
		}, 1, rental.BreakUnreadable}, // the sealed content is bound to its position
	}
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					db := migrated(t, tg)
					o, clock := paidOrder(t, db, 1)
					var ids []rental.EvidenceID
					for i := range 4 {
						ids = append(ids, addPhoto(t, db, o.ID, fmt.Sprintf("p%d.jpg", i), clock.Now().Add(time.Duration(i)*time.Minute)).ID)
					}
					if b := verify(t, db, o.ID); b != nil {
						t.Fatalf("before tampering: %v", b)
					}
					if err := c.do(db, o.ID, ids); err != nil {
						t.Fatal(err)
					}
					b := verify(t, db, o.ID)
					if b == nil {
						t.Fatal("tampering not detected")
					}
					// "last item deleted and head rewound": the head's link
					// still names the deleted item, so the chain ends wrong.
					if b.Index != c.index || b.Reason != c.reason {
						t.Errorf("broken at %d (%s), want %d (%s)", b.Index, b.Reason, c.index, c.reason)
					}
				})
			}
		})
	}
}

// rebind turns ? placeholders into $n for database/sql on PostgreSQL.
func rebind(db *store.DB, q string) string {
	if db.Dialect != store.Postgres {
		return q
	}
	var out []byte
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, fmt.Sprintf("$%d", n)...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

func TestInspectionsStored(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			o, clock := paidOrder(t, db, 2)
			p1 := addPhoto(t, db, o.ID, "u1.jpg", clock.Now())
			p2 := addPhoto(t, db, o.ID, "u2.jpg", clock.Now())
			other, _ := paidOrder(t, db, 1)
			foreign := addPhoto(t, db, other.ID, "x.jpg", clock.Now())

			u1, u2 := o.Lines[0].UnitID, o.Lines[1].UnitID
			pickup := &rental.Inspection{OrderID: o.ID, Kind: rental.InspectionPickup, Staff: rental.StaffActor("li"), At: clock.Now(),
				Units: []rental.UnitInspection{{UnitID: u2, Condition: rental.ConditionGood, Photos: []rental.EvidenceID{p2.ID}},
					{UnitID: u1, Condition: rental.ConditionWorn, Notes: "握把有磨损", Photos: []rental.EvidenceID{p1.ID}}}}
			withForeign := *pickup
			withForeign.Units = []rental.UnitInspection{{UnitID: u1, Condition: rental.ConditionGood, Photos: []rental.EvidenceID{foreign.ID}}, {UnitID: u2, Condition: rental.ConditionGood}}
			if err := db.SaveInspection(ctx, &withForeign); rental.ErrorKind(err) != rental.KindInvalid {
				t.Fatalf("photo of another order accepted: %v", err)
			}
			early := &rental.Inspection{OrderID: o.ID, Kind: rental.InspectionReturn, Staff: rental.StaffActor("li"), At: clock.Now(),
				Units: []rental.UnitInspection{{UnitID: u1, Condition: rental.ConditionGood}, {UnitID: u2, Condition: rental.ConditionGood}}}
			if err := db.SaveInspection(ctx, early); rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("return inspection before pickup: %v", err)
			}
			if err := db.SaveInspection(ctx, pickup); err != nil {
				t.Fatal(err)
			}
			if pickup.ID == 0 || pickup.EvidenceID == 0 {
				t.Fatalf("ids not set: %+v", pickup)
			}
			again := *pickup
			if err := db.SaveInspection(ctx, &again); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("second pickup inspection: %v", err)
			}
			units, _ := db.Units(ctx, o.Lines[0].ItemID)
			for _, u := range units {
				if u.ID == u1 && u.Condition != rental.ConditionWorn {
					t.Errorf("unit condition not recorded: %+v", u)
				}
			}

			if _, err := db.ConfirmInspection(ctx, pickup.ID, 8, clock.Now()); rental.ErrorKind(err) != rental.KindForbidden {
				t.Errorf("someone else confirmed: %v", err)
			}
			clock.Add(time.Minute)
			conf, err := db.ConfirmInspection(ctx, pickup.ID, 7, clock.Now())
			if err != nil || !conf.Confirmed() || conf.ConfirmedBy != 7 || conf.ConfirmEvidenceID == 0 {
				t.Fatalf("confirm: %+v %v", conf, err)
			}
			if again, err := db.ConfirmInspection(ctx, pickup.ID, 7, clock.Now().Add(time.Hour)); err != nil || !again.ConfirmedAt.Equal(conf.ConfirmedAt) {
				t.Errorf("second confirmation changed it: %v", err)
			}

			list, err := db.Inspections(ctx, o.ID)
			if err != nil || len(list) != 1 || len(list[0].Units) != 2 || list[0].Units[0].UnitID != min(u1, u2) {
				t.Fatalf("inspections %+v %v", list, err)
			}
			items, head, _ := db.Evidence(ctx, o.ID)
			if b := rental.VerifyChainHead(items, head); b != nil {
				t.Fatal(b)
			}
			// photo, photo, inspection record, confirmation
			if len(items) != 4 || items[2].Kind != rental.EvidenceInspection || items[3].Kind != rental.EvidenceConfirmation {
				t.Fatalf("chain kinds: %d items", len(items))
			}
			if !list[0].MatchesRecord(items[2]) {
				t.Errorf("stored inspection does not match its record:\n%s\n%s", list[0].Record(), items[2].Content)
			}
			if !bytes.Contains(items[3].Content, []byte(items[2].Link)) {
				t.Error("confirmation does not name the record it confirms")
			}
			// Editing the plain inspection row shows against the record.
			db.Gorm.Exec("UPDATE inspection_units SET condition = 'new' WHERE unit_id = ?", u1)
			list, _ = db.Inspections(ctx, o.ID)
			if list[0].MatchesRecord(items[2]) {
				t.Error("edited inspection still matches its record")
			}

			// The return finds a unit damaged: it goes to maintenance.
			o, _ = db.Order(ctx, o.ID)
			o.Transition(rental.StatePickedUp, rental.StaffActor("li"), clock.Now())
			db.SaveOrder(ctx, o)
			ret := &rental.Inspection{OrderID: o.ID, Kind: rental.InspectionReturn, Staff: rental.StaffActor("li"), At: clock.Now(),
				Units: []rental.UnitInspection{{UnitID: u1, Condition: rental.ConditionDamaged, Notes: "竿梢断了"}, {UnitID: u2, Condition: rental.ConditionGood}}}
			if err := db.SaveInspection(ctx, ret); err != nil {
				t.Fatal(err)
			}
			units, _ = db.Units(ctx, o.Lines[0].ItemID)
			for _, u := range units {
				if u.ID == u1 && (u.Condition != rental.ConditionDamaged || u.Status != rental.UnitMaintenance) {
					t.Errorf("damaged unit: %+v", u)
				}
			}
		})
	}
}
