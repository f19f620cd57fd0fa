package assistant

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// shopStore is the part of rental.CatalogStore that ShopCatalog uses; the
// embedded nil interface panics if anything else is called.
type shopStore struct {
	rental.CatalogStore
	items   []rental.Item
	filters []rental.ItemFilter
}

func (s *shopStore) Items(_ context.Context, f rental.ItemFilter) ([]rental.Item, error) {
	s.filters = append(s.filters, f)
	var out []rental.Item
	for _, it := range s.items {
		if (f.Category == "" || it.Category == f.Category) && (f.Tag == "" || slices.Contains(it.Tags, f.Tag)) && (it.Active || f.IncludeInactive) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s *shopStore) Item(_ context.Context, id rental.ItemID) (rental.Item, error) {
	for _, it := range s.items {
		if it.ID == id {
			return it, nil
		}
	}
	return rental.Item{}, rental.Errorf("fake", rental.KindNotFound, "no item")
}

func (s *shopStore) ShopSettings(context.Context) (rental.ShopSettings, error) {
	set := rental.DefaultShopSettings()
	set.CleaningBuffer = 2 * time.Hour
	return set, nil
}

type shopOrders struct {
	rental.OrderStore
	buffers []time.Duration
}

func (o *shopOrders) Availability(_ context.Context, id rental.ItemID, p rental.Period, buffer time.Duration) (rental.Availability, error) {
	o.buffers = append(o.buffers, buffer)
	return rental.Availability{ItemID: id, Period: p, Units: 3, Free: int(id) % 3}, nil
}

func TestShopCatalog(t *testing.T) {
	store := &shopStore{items: []rental.Item{
		{ID: 1, Category: rental.CategoryRod, Name: "鲫鱼竿", Tags: []string{"鲫鱼"}, PricePerDay: 1500, Deposit: 20000, Active: true},
		{ID: 2, Category: rental.CategoryRod, Name: "鲤鱼竿", Tags: []string{"鲤鱼", "鲫鱼"}, PricePerDay: 2500, Deposit: 40000, Active: true},
		{ID: 4, Category: rental.CategoryRod, Name: "下架的竿", Tags: []string{"鲫鱼"}, Active: false},
		{ID: 5, Category: rental.CategoryReel, Name: "纺车轮", Tags: []string{"路亚"}, Active: true},
	}}
	orders := &shopOrders{}
	c := ShopCatalog{Items: store, Shop: &rental.Shop{Catalog: store, Orders: orders, Clock: rental.SystemClock{}}}
	got, err := c.CatalogItems(context.Background(), []string{"鲫鱼", "鲤鱼"}, rental.CategoryRod, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 || got[1].PricePerDay != 2500 {
		t.Fatalf("items = %+v", got)
	}
	if len(store.filters) != 2 || store.filters[0].Tag != "鲫鱼" || store.filters[1].Tag != "鲤鱼" {
		t.Fatalf("filters = %+v", store.filters)
	}
	all, _ := c.CatalogItems(context.Background(), nil, "", 500)
	if len(all) != 3 || store.filters[2].Limit != 100 {
		t.Fatalf("all = %d items, filter %+v", len(all), store.filters[2])
	}
	p := rental.Period{From: rental.Date{Year: 2026, Month: 6, Day: 6}, To: rental.Date{Year: 2026, Month: 6, Day: 7}}
	if n, err := c.Free(context.Background(), 2, p); err != nil || n != 2 {
		t.Fatalf("Free = %d, %v", n, err)
	}
	if orders.buffers[0] != 2*time.Hour {
		t.Errorf("availability ignored the cleaning buffer: %v", orders.buffers)
	}

	// The assistant over it answers from the store's items.
	a, err := New(DemoKnowledge(), Options{Catalog: c, PublicURL: "https://s", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := a.Answer(context.Background(), Question{Text: "有没有钓鲫鱼的杆子", At: testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Kind != AnswerCatalog || len(ans.Sources) < 2 || ans.Sources[0].Kind != "item" {
		t.Fatalf("answer = %+v", ans)
	}
}

func TestCatalogSnapshotIsCached(t *testing.T) {
	now := testNow
	a, cat := newTestAssistant(t, func(o *Options) { o.Now = func() time.Time { return now } })
	ask := func() {
		if _, err := a.Answer(context.Background(), Question{Text: "有鲫鱼竿吗"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ask()
	ask()
	if cat.listCalls != 1 {
		t.Fatalf("catalog listed %d times within the TTL", cat.listCalls)
	}
	now = now.Add(31 * time.Second)
	ask()
	if cat.listCalls != 2 {
		t.Fatalf("catalog listed %d times after the TTL", cat.listCalls)
	}
	// A failed refresh serves the last snapshot.
	now = now.Add(time.Minute)
	cat.fail = rental.Errorf("fake", rental.KindUnavailable, "down")
	ask()
	a.InvalidateCatalog()
	if _, err := a.Answer(context.Background(), Question{Text: "有鲫鱼竿吗"}, nil); err == nil {
		t.Fatal("no snapshot and a failing catalog: want an error")
	}
	// Knowledge questions do not need the catalog.
	if ans, err := a.Answer(context.Background(), Question{Text: "押金咋退"}, nil); err != nil || ans.Top() != "deposit-refund" {
		t.Fatalf("knowledge question with the catalog down: %+v, %v", ans, err)
	}
}

func TestCatalogOverview(t *testing.T) {
	a, _ := newTestAssistant(t, nil)
	for _, q := range []string{"有什么可以租的", "你们都出租什么", "店里都有什么装备"} {
		ans, err := a.Answer(context.Background(), Question{Text: q, At: testNow}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Kind != AnswerCatalog || !strings.Contains(ans.Text, "鱼竿 6 款（每天 15–30 元）") || !strings.Contains(ans.Text, "钓椅 1 款（每天 8 元）") {
			t.Errorf("%q → %s\n%s", q, ans.Kind, ans.Text)
		}
	}
	// "有什么区别" is not a question about stock.
	if ans, _ := a.Answer(context.Background(), Question{Text: "子线和主线有什么区别", At: testNow}, nil); ans.Top() != "line-main-vs-sub" {
		t.Errorf("区别 question → %s %s", ans.Kind, ans.Top())
	}
}
