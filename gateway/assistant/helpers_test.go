package assistant

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tacklegate/tacklegate/rental"
)

// testNow is a Wednesday morning in Shanghai: "这周六" is 2026-06-06.
var testNow = time.Date(2026, 6, 3, 10, 0, 0, 0, rental.Shanghai())

// fakeCatalog is the catalog of testdata/catalog.yaml: a fixed number of
// free units per item, none on its busy days.
type fakeCatalog struct {
	items []fakeItem

	mu        sync.Mutex
	listCalls int
	freeCalls int
	fail      error
}

type fakeItem struct {
	ID          int64    `yaml:"id"`
	Category    string   `yaml:"category"`
	Name        string   `yaml:"name"`
	Tags        []string `yaml:"tags"`
	Price       int64    `yaml:"price"`
	Deposit     int64    `yaml:"deposit"`
	Free        int      `yaml:"free"`
	Busy        []string `yaml:"busy"`
	Description string   `yaml:"description"`
}

func loadCatalog(t testing.TB) *fakeCatalog {
	t.Helper()
	raw, err := os.ReadFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Items []fakeItem `yaml:"items"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return &fakeCatalog{items: f.Items}
}

func (c *fakeCatalog) CatalogItems(_ context.Context, tags []string, cat rental.Category, limit int) ([]CatalogItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listCalls++
	if c.fail != nil {
		return nil, c.fail
	}
	var out []CatalogItem
	for _, it := range c.items {
		if cat != "" && rental.Category(it.Category) != cat {
			continue
		}
		if len(tags) > 0 && !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(it.Tags, t) }) {
			continue
		}
		out = append(out, CatalogItem{ID: rental.ItemID(it.ID), Name: it.Name, Category: rental.Category(it.Category), Tags: it.Tags,
			Description: it.Description, PricePerDay: rental.Fen(it.Price), Deposit: rental.Fen(it.Deposit)})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (c *fakeCatalog) Free(_ context.Context, id rental.ItemID, p rental.Period) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.freeCalls++
	for _, it := range c.items {
		if rental.ItemID(it.ID) != id {
			continue
		}
		for d := p.From; d.Before(p.To); d = d.AddDays(1) {
			if slices.Contains(it.Busy, d.String()) {
				return 0, nil
			}
		}
		return it.Free, nil
	}
	return 0, rental.Errorf("fake.Free", rental.KindNotFound, "no item %d", id)
}

// newTestAssistant is the demo knowledge with the test catalog.
func newTestAssistant(t testing.TB, mod func(*Options)) (*Assistant, *fakeCatalog) {
	t.Helper()
	cat := loadCatalog(t)
	opts := Options{Catalog: cat, PublicURL: "https://shop.example", Now: func() time.Time { return testNow }}
	if mod != nil {
		mod(&opts)
	}
	a, err := New(DemoKnowledge(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, cat
}
