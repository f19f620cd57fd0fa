package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// day0 is 10:00 on 28 April 2026 in Shanghai; rentals in the tests start
// in May.
var day0 = time.Date(2026, 4, 28, 2, 0, 0, 0, time.UTC)

func shopOn(db *store.DB) (*rental.Shop, *testClock) {
	clock := &testClock{t: day0}
	return &rental.Shop{Catalog: db, Orders: db, Clock: clock}, clock
}

func period(t testing.TB, from, to string) rental.Period {
	t.Helper()
	p, err := rental.ParsePeriod(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func customer(id int64) rental.Member { return rental.Member{ID: rental.MemberID(id), Tier: "silver"} }

func TestReserveAndAvailabilityWithBuffer(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, _ := shopOn(db)
			set := rental.DefaultShopSettings()
			set.CleaningBuffer = 6 * time.Hour
			if err := db.SaveShopSettings(ctx, set); err != nil {
				t.Fatal(err)
			}
			rod, units := seedItem(t, db, "rod", 4, rental.Yuan(15), rental.Yuan(200))
			units[3].Status = rental.UnitRetired // retired units never count
			if err := db.UpdateUnit(ctx, &units[3]); err != nil {
				t.Fatal(err)
			}

			may1to3 := period(t, "2026-05-01", "2026-05-03")
			a, err := shop.Availability(ctx, rod.ID, may1to3)
			if err != nil || a.Units != 3 || a.Free != 3 {
				t.Fatalf("empty shop: %+v %v", a, err)
			}
			o, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 2}}, may1to3)
			if err != nil {
				t.Fatal(err)
			}
			if o.ID == 0 || o.Version != 1 || len(o.Lines) != 2 || o.Lines[0].UnitID != units[0].ID || o.Lines[1].UnitID != units[1].ID {
				t.Fatalf("reserved %+v", o)
			}
			if o.CleaningBuffer != 6*time.Hour {
				t.Errorf("buffer not copied: %v", o.CleaningBuffer)
			}
			for _, tt := range []struct {
				from, to string
				free     int
			}{
				{"2026-05-01", "2026-05-03", 1},
				{"2026-04-29", "2026-05-01", 3}, // ends as the order begins, but its own buffer runs into it…
				{"2026-05-03", "2026-05-04", 1}, // the buffer after the order keeps units out on 3 May
				{"2026-05-04", "2026-05-06", 3},
			} {
				a, err := shop.Availability(ctx, rod.ID, period(t, tt.from, tt.to))
				want := tt.free
				if tt.from == "2026-04-29" {
					want = 1 // …so only the unheld unit is free
				}
				if err != nil || a.Free != want {
					t.Errorf("%s–%s: free %d, want %d (%v)", tt.from, tt.to, a.Free, want, err)
				}
			}
			// Two more for the same days: only one is left.
			_, err = shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 2}}, may1to3)
			if rental.ErrorKind(err) != rental.KindConflict || !containsAll(rental.ErrorMessage(err), "只剩 1 件", "only 1 of rod") {
				t.Fatalf("overbooking: %v", err)
			}
			if _, err := shop.Availability(ctx, 9999, may1to3); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("availability of unknown item: %v", err)
			}
			// Cancelling releases the units.
			if err := o.Transition(rental.StateCancelled, rental.MemberActor(1), day0); err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			if a, _ := shop.Availability(ctx, rod.ID, may1to3); a.Free != 3 {
				t.Errorf("after cancel: free %d, want 3", a.Free)
			}
			if _, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 3}}, may1to3); err != nil {
				t.Errorf("after cancel: %v", err)
			}
			// Units in maintenance are not handed out.
			units[2].Status = rental.UnitMaintenance
			db.UpdateUnit(ctx, &units[2])
			if a, _ := shop.Availability(ctx, rod.ID, period(t, "2026-06-01", "2026-06-02")); a.Units != 2 || a.Free != 2 {
				t.Errorf("with one unit in maintenance: %+v", a)
			}
		})
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// migratedTB is migrated for benchmarks too.
func migratedTB(tb testing.TB, tg storetest.Target) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, tg.Fresh(tb), store.Options{CreateDir: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := db.UseDataKey(ctx, testKey); err != nil {
		tb.Fatal(err)
	}
	return db
}

// TestLastUnitRace races 100 reservations for the last free unit: exactly
// one wins, the others get a conflict, and one reservation holds the unit.
func TestLastUnitRace(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, _ := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 3, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			// Two of three units are taken already.
			if _, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 2}}, p); err != nil {
				t.Fatal(err)
			}
			const n = 100
			var wins, conflicts atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := shop.PlaceOrder(ctx, customer(int64(100+i)), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
					switch rental.ErrorKind(err) {
					case "":
						wins.Add(1)
					case rental.KindConflict:
						conflicts.Add(1)
					default:
						t.Errorf("reservation %d: %v", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || conflicts.Load() != n-1 {
				t.Fatalf("%d wins, %d conflicts; want 1 and %d", wins.Load(), conflicts.Load(), n-1)
			}
			var held int64
			if err := db.Gorm.Table("reservations").Where("released_at IS NULL").Count(&held).Error; err != nil {
				t.Fatal(err)
			}
			if held != 3 {
				t.Errorf("%d active reservations, want 3", held)
			}
		})
	}
}

// TestDatabaseRefusesDoubleBooking writes reservations behind the store's
// back: the database itself refuses an overlap on an active reservation.
func TestDatabaseRefusesDoubleBooking(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, _ := shopOn(db)
			rod, units := seedItem(t, db, "rod", 1, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			o, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			if err != nil {
				t.Fatal(err)
			}
			insert := func(start, end time.Time, released *time.Time) error {
				return db.Gorm.Exec("INSERT INTO reservations (order_id, unit_id, starts_at, ends_at, released_at) VALUES (?, ?, ?, ?, ?)",
					o.ID, units[0].ID, start.UTC(), end.UTC(), released).Error
			}
			s, e := p.Block(0)
			err = insert(s.Add(24*time.Hour), e.Add(24*time.Hour), nil)
			if err == nil {
				t.Fatal("overlapping reservation stored")
			}
			// Refused by the constraint (PostgreSQL) or the trigger (SQLite),
			// not by some other check.
			if !strings.Contains(err.Error(), "reservations_no_overlap") && !strings.Contains(err.Error(), "reservation_overlap") {
				t.Fatalf("overlap refused for another reason: %v", err)
			}
			if err := insert(e, e.Add(24*time.Hour), nil); err != nil {
				t.Errorf("adjacent reservation refused: %v", err)
			}
			now := time.Now().UTC()
			if err := insert(s, e, &now); err != nil {
				t.Errorf("released overlapping reservation refused: %v", err)
			}
			// Un-releasing a released overlap is refused too.
			err = db.Gorm.Exec("UPDATE reservations SET released_at = NULL WHERE released_at IS NOT NULL").Error
			if err == nil || (!strings.Contains(err.Error(), "reservations_no_overlap") && !strings.Contains(err.Error(), "reservation_overlap")) {
				t.Errorf("reactivating an overlapping reservation: %v", err)
			}
		})
	}
}

func TestExpiryReleasesUnits(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			shop, clock := shopOn(db)
			rod, _ := seedItem(t, db, "rod", 1, rental.Yuan(15), rental.Yuan(200))
			p := period(t, "2026-05-01", "2026-05-03")
			unpaid, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := unpaid.StartPayment(rental.MemberActor(1), clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := db.SaveOrder(ctx, unpaid); err != nil {
				t.Fatal(err)
			}
			if _, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p); rental.ErrorKind(err) != rental.KindConflict {
				t.Fatalf("unit not held by the unpaid order: %v", err)
			}
			clock.Add(14 * time.Minute)
			if got, err := shop.ExpireUnpaid(ctx, 10); err != nil || len(got) != 0 {
				t.Fatalf("expired early: %d %v", len(got), err)
			}
			clock.Add(time.Minute) // 15 minutes: the default payment timeout
			got, err := shop.ExpireUnpaid(ctx, 10)
			if err != nil || len(got) != 1 || got[0].ID != unpaid.ID {
				t.Fatalf("ExpireUnpaid = %v, %v", got, err)
			}
			o, err := db.Order(ctx, unpaid.ID)
			if err != nil {
				t.Fatal(err)
			}
			last := o.Transitions[len(o.Transitions)-1]
			if o.State != rental.StateExpired || last.From != rental.StateAwaitingPayment || last.Actor != rental.ActorSystem || !last.At.Equal(clock.Now()) {
				t.Errorf("expired order %s, last transition %+v", o.State, last)
			}
			if len(o.Payments) != 1 || o.Payments[0].State != rental.PaymentPending {
				t.Errorf("pending payment changed: %+v (the caller closes it at WeChat Pay)", o.Payments)
			}
			if _, err := shop.PlaceOrder(ctx, customer(2), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, p); err != nil {
				t.Errorf("unit not released by expiry: %v", err)
			}
			if again, _ := shop.ExpireUnpaid(ctx, 10); len(again) != 0 {
				t.Errorf("expired twice: %d", len(again))
			}
		})
	}
}

func TestExpiryDoesNotOverwriteConcurrentPayment(t *testing.T) {
	db := migrated(t, storetest.Target{Name: "sqlite"})
	ctx := context.Background()
	shop, clock := shopOn(db)
	rod, _ := seedItem(t, db, "rod", 1, rental.Yuan(15), rental.Yuan(200))
	o, err := shop.PlaceOrder(ctx, customer(1), []rental.ItemQuantity{{Item: rod.ID, Quantity: 1}}, period(t, "2026-05-01", "2026-05-02"))
	if err != nil {
		t.Fatal(err)
	}
	pay, _ := o.StartPayment(rental.MemberActor(1), clock.Now())
	db.SaveOrder(ctx, o)
	// The expiry job read the order; the payment notification lands first.
	stale, _ := db.Order(ctx, o.ID)
	fresh, _ := db.Order(ctx, o.ID)
	clock.Add(20 * time.Minute)
	if _, err := fresh.PaymentSucceeded(pay.OutTradeNo, "tx", pay.Amount, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOrder(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := stale.Transition(rental.StateExpired, rental.ActorSystem, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOrder(ctx, stale); rental.ErrorKind(err) != rental.KindConflict {
		t.Fatalf("stale expiry saved over a payment: %v", err)
	}
	if got, _ := shop.ExpireUnpaid(ctx, 10); len(got) != 0 {
		t.Errorf("paid order expired")
	}
}

// BenchmarkReserve measures reservations per second. Each iteration
// reserves one unit for a fresh single day, so every reservation succeeds
// and the reservations table grows as in a real shop:
//
//   - serial: one goroutine, one item;
//   - parallel/1item: goroutines racing for one item's units (they queue on
//     that item's lock, as customers of one rod model would);
//   - parallel/8items: goroutines spread over eight items, which PostgreSQL
//     reserves concurrently and SQLite still one writer at a time.
func BenchmarkReserve(b *testing.B) {
	for _, tg := range storetest.Targets() {
		b.Run(tg.Name, func(b *testing.B) {
			for _, mode := range []struct {
				name     string
				parallel bool
				items    int
			}{{"serial", false, 1}, {"parallel/1item", true, 1}, {"parallel/8items", true, 8}} {
				b.Run(mode.name, func(b *testing.B) {
					db := migratedTB(b, tg)
					ctx := context.Background()
					set := rental.DefaultShopSettings()
					var items []rental.Item
					for i := range mode.items {
						it, _ := seedItem(b, db, fmt.Sprintf("rod%d", i), 8, rental.Yuan(15), rental.Yuan(200))
						items = append(items, it)
					}
					var seq atomic.Int64
					reserve := func() error {
						i := seq.Add(1)
						it := items[int(i)%len(items)]
						// Eight units per item: each item's units are all
						// taken on one day before the next day is used.
						from := rental.DateOf(day0).AddDays(int(i / int64(8*len(items))))
						o, err := rental.NewOrder(customer(i), []rental.LineRequest{{Item: it, Quantity: 1}}, rental.Period{From: from, To: from.AddDays(1)}, set, day0)
						if err != nil {
							return err
						}
						return db.Reserve(ctx, o)
					}
					b.ResetTimer()
					if !mode.parallel {
						for b.Loop() {
							if err := reserve(); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := reserve(); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
				})
			}
		})
	}
}
