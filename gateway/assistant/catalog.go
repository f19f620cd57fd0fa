package assistant

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tacklegate/tacklegate/rental"
)

// CatalogItem is what the assistant tells a customer about a piece of gear.
type CatalogItem struct {
	ID          rental.ItemID
	Name        string
	Category    rental.Category
	Tags        []string
	Description string
	PricePerDay rental.Fen
	Deposit     rental.Fen
}

// Catalog is the live catalog the assistant reads. The gateway wires it to
// the store (ShopCatalog does it over rental's ports).
type Catalog interface {
	// CatalogItems lists active items carrying any of tags (all items when
	// tags is empty) in category ("" for any), at most limit.
	CatalogItems(ctx context.Context, tags []string, category rental.Category, limit int) ([]CatalogItem, error)
	// Free counts the units of an item free for the whole period.
	Free(ctx context.Context, id rental.ItemID, p rental.Period) (int, error)
}

// ShopCatalog is a Catalog over rental's catalog store and the shop's
// availability.
type ShopCatalog struct {
	Items rental.CatalogStore
	Shop  *rental.Shop
}

var _ Catalog = ShopCatalog{}

// CatalogItems implements Catalog with one indexed query per tag.
func (c ShopCatalog) CatalogItems(ctx context.Context, tags []string, category rental.Category, limit int) ([]CatalogItem, error) {
	if len(tags) == 0 {
		tags = []string{""}
	}
	seen := map[rental.ItemID]bool{}
	var out []CatalogItem
	for _, tag := range tags {
		items, err := c.Items.Items(ctx, rental.ItemFilter{Category: category, Tag: tag, Limit: min(max(limit, 1), 100)})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if seen[it.ID] || !it.Active {
				continue
			}
			seen[it.ID] = true
			out = append(out, CatalogItem{ID: it.ID, Name: it.Name, Category: it.Category, Tags: it.Tags,
				Description: it.Description, PricePerDay: it.PricePerDay, Deposit: it.Deposit})
		}
	}
	return out, nil
}

// Free implements Catalog with the shop's availability (cleaning buffer
// included).
func (c ShopCatalog) Free(ctx context.Context, id rental.ItemID, p rental.Period) (int, error) {
	a, err := c.Shop.Availability(ctx, id, p)
	if err != nil {
		return 0, err
	}
	return a.Free, nil
}

// categoryWords maps canonical words to catalog categories.
var categoryWords = map[string]rental.Category{
	"鱼竿": rental.CategoryRod, "台钓竿": rental.CategoryRod, "矶钓竿": rental.CategoryRod, "路亚竿": rental.CategoryRod,
	"海竿": rental.CategoryRod, "海钓竿": rental.CategoryRod, "鲫鱼竿": rental.CategoryRod, "鲤鱼竿": rental.CategoryRod,
	"抛竿": rental.CategoryRod, "手竿": rental.CategoryRod, "矶竿": rental.CategoryRod,
	"渔轮": rental.CategoryReel, "纺车轮": rental.CategoryReel, "水滴轮": rental.CategoryReel,
	"鱼线": rental.CategoryLine, "钓箱": rental.CategoryTackleBox, "钓鱼伞": rental.CategoryUmbrella, "钓椅": rental.CategoryChair,
}

// builtinTags are fish and uses the assistant recognises even before the
// catalog has been read; the catalog's own tags are added to them.
var builtinTags = []string{"鲫鱼", "鲤鱼", "草鱼", "鲢鳙", "翘嘴", "鲈鱼", "黑鱼", "鳜鱼", "罗非", "马口", "黑鲷",
	"台钓", "矶钓", "路亚", "海钓", "远投", "野钓", "黑坑", "筏钓", "大物", "新手", "纺车轮", "水滴轮"}

// Cues that a question is about what the shop has: availability, renting
// a thing, its price. They are read on the normalised text.
var (
	reHaveCue    = regexp.MustCompile(`有没有|有无|有木有|还有|有货|有的租|出租|可租|能租|可以租|想租|要租|租[一个根把套副台只条几两]|有.{0,12}吗|有.{0,12}没|库存|借`)
	reStrongHave = regexp.MustCompile(`有没有|有木有|还有|有货|有的租|出租|可租|能租|可以租|想租|要租|库存`)
	// "租的轮子", "我租的竿": the customer's own rental, not a question
	// about stock.
	reRented   = regexp.MustCompile(`租的|租来的|租了的|租过的`)
	rePriceCue = regexp.MustCompile(`多少钱|一天多少|多少一天|租金|价格|价钱|几块|多钱|怎么卖|什么价`)
	reAdvice   = regexp.MustCompile(`推荐|适合|选什么|选哪|哪款|哪种|哪个好|用什么`)
	// "有什么可以租的", "都出租什么": what the shop rents at all.
	reBrowse = regexp.MustCompile(`(什么|啥|哪些)(可以租|能租|可租|出租|好租)|(可以|能|都)租(些)?(什么|啥|哪些)|(出租|租赁)(些)?(什么|啥|哪些)`)
	// "你们有什么装备": the same, unless the knowledge base knows better.
	reBrowseWeak = regexp.MustCompile(`(都|还|店里|你们)有(些)?(什么|啥|哪些)(装备|东西|钓具|渔具)`)
)

// catalogIntent is what a question asks of the catalog.
type catalogIntent struct {
	tags     []string
	category rental.Category
	have     bool // asks whether the shop has it / to rent it
	price    bool // asks what it costs
	advice   bool // asks what to choose
	browse   int  // asks what the shop rents at all: 2 clearly, 1 perhaps
	dated    bool
}

func (ci catalogIntent) product() bool { return len(ci.tags) > 0 || ci.category != "" }

func detectIntent(norm string, words []string, tagSet map[string]bool, dated bool) catalogIntent {
	ci := catalogIntent{dated: dated}
	for _, w := range words {
		if tagSet[w] && !slices.Contains(ci.tags, w) {
			ci.tags = append(ci.tags, w)
		}
		if c, ok := categoryWords[w]; ok && ci.category == "" {
			ci.category = c
		}
	}
	ci.have = reHaveCue.MatchString(norm)
	if reRented.MatchString(norm) {
		ci.have = reStrongHave.MatchString(norm)
	}
	ci.price = rePriceCue.MatchString(norm)
	ci.advice = reAdvice.MatchString(norm)
	switch compact := strings.Join(strings.Fields(norm), ""); {
	case reBrowse.MatchString(compact):
		ci.browse = 2
	case reBrowseWeak.MatchString(compact):
		ci.browse = 1
	}
	return ci
}

// itemURL is the reserve link of an item, with the dates when asked.
func itemURL(base string, id rental.ItemID, p rental.Period, dated bool) string {
	u := strings.TrimRight(base, "/") + "/items/" + strconv.FormatInt(int64(id), 10)
	if dated {
		q := url.Values{"from": {p.From.String()}, "to": {p.To.String()}}
		u += "?" + q.Encode()
	}
	return u
}

// catalogHit is a ranked item with its availability.
type catalogHit struct {
	item  CatalogItem
	score float64
	free  int
	err   error
}

// wantedText names what the customer asked for: "适合鲫鱼的鱼竿".
func wantedText(ci catalogIntent) string {
	what := "装备"
	if ci.category != "" {
		what = ci.category.Label()
	}
	if len(ci.tags) > 0 {
		return "适合" + strings.Join(ci.tags, "、") + "的" + what
	}
	return what
}

func stockText(h catalogHit, dated bool) string {
	switch {
	case h.err != nil:
		return "库存以下单页为准"
	case h.free > 0:
		return fmt.Sprintf("可租 %d 件", h.free)
	case dated:
		return "所选日期已约满"
	}
	return "今天已租完"
}

func catalogText(hits []catalogHit, ci catalogIntent, p rental.Period, base string) string {
	var b strings.Builder
	when := "今天"
	if ci.dated {
		when = periodText(p)
	}
	fmt.Fprintf(&b, "%s（%s）：\n", wantedText(ci), when)
	for i, h := range hits {
		it := h.item
		fmt.Fprintf(&b, "%d. %s — 每天 %s，押金 %s，%s\n   预订：%s\n", i+1, it.Name, yuan(int64(it.PricePerDay)), yuan(int64(it.Deposit)),
			stockText(h, ci.dated), itemURL(base, it.ID, p, ci.dated))
	}
	b.WriteString("押金在还装备验收后原路退回；会员等级达标可免押金。")
	return b.String()
}

// suggestionText is the short list appended to advice from the knowledge
// base ("打翘嘴选什么竿" → the entry, then the shop's matching items).
func suggestionText(hits []catalogHit, ci catalogIntent, p rental.Period, base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n\n店里%s：", wantedText(ci))
	for _, h := range hits {
		fmt.Fprintf(&b, "\n· %s，每天 %s，%s %s", h.item.Name, yuan(int64(h.item.PricePerDay)), stockText(h, ci.dated), itemURL(base, h.item.ID, p, ci.dated))
	}
	return b.String()
}

// overviewText says what the shop rents, by category, with the price range.
func overviewText(items []CatalogItem) string {
	type group struct {
		n        int
		min, max rental.Fen
	}
	groups := map[rental.Category]*group{}
	for _, it := range items {
		g := groups[it.Category]
		if g == nil {
			g = &group{min: it.PricePerDay, max: it.PricePerDay}
			groups[it.Category] = g
		}
		g.n++
		g.min, g.max = min(g.min, it.PricePerDay), max(g.max, it.PricePerDay)
	}
	var parts []string
	for _, c := range rental.Categories() {
		g := groups[c]
		if g == nil {
			continue
		}
		price := "每天 " + yuan(int64(g.min))
		if g.max != g.min {
			price = "每天 " + strings.TrimSuffix(yuan(int64(g.min)), " 元") + "–" + yuan(int64(g.max))
		}
		parts = append(parts, fmt.Sprintf("%s %d 款（%s）", c.Label(), g.n, price))
	}
	return "店里可以租：" + strings.Join(parts, "、") + "。\n告诉我想钓什么鱼、哪天用，我帮您挑合适的；小程序首页也可以按类别浏览。"
}
