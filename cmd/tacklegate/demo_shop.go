package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// demoItem is one line of the demo catalog: an item and how many units of
// it the shop has, with serials PREFIX-01, PREFIX-02, …
type demoItem struct {
	item   rental.Item
	prefix string
	units  int
}

// demoCatalog is a small freshwater-and-sea tackle shop by a reservoir:
// rods for 鲫鱼 and 鲤鱼, sea rods, reels, line sets, tackle boxes,
// umbrellas and chairs. Prices per day and deposits are in fen.
var demoCatalog = []demoItem{
	{rental.Item{Category: rental.CategoryRod, Name: "台钓竿 3.6m（鲫鱼）",
		Description: "高碳素台钓竿，3.6 米 28 调，轻巧不累手，适合池塘、小河钓鲫鱼。附竿稍保护套。",
		Tags:        []string{"鲫鱼", "台钓", "淡水", "新手"}, PricePerDay: 1500, Deposit: 20000}, "ROD-TD36", 4},
	{rental.Item{Category: rental.CategoryRod, Name: "台钓竿 4.5m（鲫鱼）",
		Description: "4.5 米 37 调台钓竿，水库、大塘远一点的钓位也够得着，鲫鱼、小鲤都能应付。",
		Tags:        []string{"鲫鱼", "台钓", "淡水"}, PricePerDay: 1800, Deposit: 25000}, "ROD-TD45", 4},
	{rental.Item{Category: rental.CategoryRod, Name: "鲤鱼竿 5.4m 硬调",
		Description: "5.4 米 28 调硬竿，腰力足，对付 5 斤以上的鲤鱼、草鱼。建议搭配 2.0 号以上主线。",
		Tags:        []string{"鲤鱼", "草鱼", "台钓", "淡水", "大物"}, PricePerDay: 2500, Deposit: 40000}, "ROD-LY54", 3},
	{rental.Item{Category: rental.CategoryRod, Name: "矶钓竿 5.3m 1.5号",
		Description: "矶钓竿 1.5 号 5.3 米，礁石、防波堤钓黑鲷、鲈鱼。出海前请确认天气与潮汐。",
		Tags:        []string{"海钓", "矶钓", "黑鲷", "鲈鱼"}, PricePerDay: 3500, Deposit: 60000}, "ROD-JD53", 2},
	{rental.Item{Category: rental.CategoryRod, Name: "海竿（远投竿）4.2m",
		Description: "4.2 米远投海竿，沙滩、堤岸抛投，钓鲈鱼、黄鱼。需搭配 5000 型纺车轮。",
		Tags:        []string{"海钓", "远投", "鲈鱼", "黄鱼"}, PricePerDay: 3000, Deposit: 50000}, "ROD-HG42", 3},
	{rental.Item{Category: rental.CategoryReel, Name: "纺车轮 3000型",
		Description: "3000 型纺车轮，前卸力，已预绕 2.0 号尼龙线 150 米，路亚、矶钓、轻型海竿通用。",
		Tags:        []string{"路亚", "矶钓", "鲈鱼"}, PricePerDay: 1200, Deposit: 30000}, "REEL-3000", 4},
	{rental.Item{Category: rental.CategoryReel, Name: "纺车轮 5000型 远投",
		Description: "5000 型远投纺车轮，浅线杯，预绕 4 号 PE 线，配海竿远投。",
		Tags:        []string{"海钓", "远投"}, PricePerDay: 1500, Deposit: 35000}, "REEL-5000", 2},
	{rental.Item{Category: rental.CategoryLine, Name: "成品线组套装（鲫鱼）",
		Description: "绑好的主线组 + 子线 + 浮漂 + 铅皮，开箱即钓；线组为消耗品，用完不必归还，不收押金。",
		Tags:        []string{"鲫鱼", "台钓", "新手"}, PricePerDay: 500, Deposit: 0}, "LINE-JY", 10},
	{rental.Item{Category: rental.CategoryLine, Name: "鲤鱼大物线组 3.0号",
		Description: "3.0 号主线 + 2.0 号子线的大物线组，附 2 枚备用钩。",
		Tags:        []string{"鲤鱼", "大物"}, PricePerDay: 800, Deposit: 0}, "LINE-LY", 6},
	{rental.Item{Category: rental.CategoryTackleBox, Name: "多功能钓箱 28L（带坐垫）",
		Description: "28 升钓箱，可坐可装，带侧挂竿架与饵料盘，四脚可调，水边不平也稳。",
		Tags:        []string{"台钓", "淡水"}, PricePerDay: 2000, Deposit: 30000}, "BOX-28L", 3},
	{rental.Item{Category: rental.CategoryTackleBox, Name: "路亚工具箱",
		Description: "路亚饵收纳箱，附控鱼器、摘钩钳、剪线钳。",
		Tags:        []string{"路亚", "海钓"}, PricePerDay: 800, Deposit: 10000}, "BOX-LURE", 3},
	{rental.Item{Category: rental.CategoryUmbrella, Name: "钓鱼伞 2.2m 万向",
		Description: "2.2 米万向钓鱼伞，防晒防雨，伞面可 360° 调节，附地插。",
		Tags:        []string{"防晒", "防雨", "淡水"}, PricePerDay: 1000, Deposit: 15000}, "UMB-22", 4},
	{rental.Item{Category: rental.CategoryChair, Name: "折叠钓椅（可调腿）",
		Description: "铝合金折叠钓椅，四腿独立调节，带靠背与竿架接口。",
		Tags:        []string{"台钓", "淡水"}, PricePerDay: 800, Deposit: 10000}, "CHAIR-AL", 5},
}

// seedShop fills an empty catalog with the demo shop and its settings. A
// catalog that has items already is left alone, so a restarted demo keeps
// what the owner changed.
func seedShop(ctx context.Context, db *store.DB) error {
	existing, err := db.Items(ctx, rental.ItemFilter{IncludeInactive: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	set := rental.DefaultShopSettings()
	// Anglers start early; weekends longer. Gold members rent without a
	// deposit. Gear is due back the morning after the last day (12 h grace).
	set.Hours = rental.EveryDay(5*60+30, 19*60)
	set.Hours[0] = rental.DayHours{Open: 5 * 60, Close: 20 * 60}
	set.Hours[6] = rental.DayHours{Open: 5 * 60, Close: 20 * 60}
	set.DepositWaived = map[rental.Tier]bool{"gold": true}
	if err := db.SaveShopSettings(ctx, set); err != nil {
		return err
	}
	for _, d := range demoCatalog {
		it := d.item
		it.Active = true
		it.Photos = demoPhotos(d.prefix)
		if err := db.CreateItem(ctx, &it); err != nil {
			return fmt.Errorf("demo item %s: %w", it.Name, err)
		}
		for i := 1; i <= d.units; i++ {
			u := rental.Unit{ItemID: it.ID, Serial: fmt.Sprintf("%s-%02d", d.prefix, i), Condition: rental.ConditionGood, Status: rental.UnitAvailable}
			if i == 1 {
				u.Condition = rental.ConditionNew
			}
			if err := db.CreateUnit(ctx, &u); err != nil {
				return fmt.Errorf("demo unit %s: %w", u.Serial, err)
			}
		}
	}
	return nil
}

// demoPhotos are the drawings the customer page embeds (gateway/web/
// customer/img), one per kind of gear: a demo shop has no photographs, and
// the page must not fetch pictures from elsewhere.
func demoPhotos(prefix string) []string {
	name := "rod"
	switch {
	case strings.HasPrefix(prefix, "ROD-JD"), strings.HasPrefix(prefix, "ROD-HG"):
		name = "searod"
	case strings.HasPrefix(prefix, "REEL"):
		name = "reel"
	case strings.HasPrefix(prefix, "LINE"):
		name = "line"
	case strings.HasPrefix(prefix, "BOX"):
		name = "box"
	case strings.HasPrefix(prefix, "UMB"):
		name = "umbrella"
	case strings.HasPrefix(prefix, "CHAIR"):
		name = "chair"
	}
	return []string{"/customer/img/" + name + ".svg"}
}
