package rental

import (
	"strings"
	"time"
	"unicode/utf8"
)

// ItemID identifies a catalog item (a kind of gear: "台钓竿 4.5m").
type ItemID int64

// UnitID identifies one physical piece of an item, with its own serial.
type UnitID int64

// Category groups items on the customer page.
type Category string

const (
	CategoryRod       Category = "rod"
	CategoryReel      Category = "reel"
	CategoryLine      Category = "line"
	CategoryTackleBox Category = "tackle_box"
	CategoryUmbrella  Category = "umbrella"
	CategoryChair     Category = "chair"
	CategoryOther     Category = "other"
)

var categoryLabels = map[Category]string{
	CategoryRod: "鱼竿", CategoryReel: "渔轮", CategoryLine: "鱼线", CategoryTackleBox: "钓箱",
	CategoryUmbrella: "钓鱼伞", CategoryChair: "钓椅", CategoryOther: "其他",
}

// Categories lists the categories in the order the customer page shows them.
func Categories() []Category {
	return []Category{CategoryRod, CategoryReel, CategoryLine, CategoryTackleBox, CategoryUmbrella, CategoryChair, CategoryOther}
}

// Valid reports whether c is one of the known categories.
func (c Category) Valid() bool { _, ok := categoryLabels[c]; return ok }

// Label is the Chinese name shown to customers.
func (c Category) Label() string { return categoryLabels[c] }

// Item is a kind of gear the shop rents out. Prices are per unit.
type Item struct {
	ID          ItemID
	Category    Category
	Name        string
	Description string
	Tags        []string // target fish and uses: "鲫鱼", "鲤鱼", "海钓"
	PricePerDay Fen
	Deposit     Fen
	Photos      []string // URLs or media keys, first one is the cover
	Active      bool     // inactive items are hidden and cannot be ordered
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Limits on catalog text, so one careless import cannot fill the page.
const (
	maxItemName   = 60
	maxItemDesc   = 2000
	maxItemTags   = 20
	maxItemPhotos = 20
)

// Validate checks an item before it is stored; it also trims names and drops
// empty or repeated tags so that a tag filter finds what the owner meant.
func (it *Item) Validate() error {
	const op = "rental.Item.Validate"
	it.Name = strings.TrimSpace(it.Name)
	switch {
	case !it.Category.Valid():
		return Errorf(op, KindInvalid, "未知的类别 (unknown category) %q", it.Category)
	case it.Name == "":
		return Errorf(op, KindInvalid, "请填写名称 (name is required)")
	case utf8.RuneCountInString(it.Name) > maxItemName:
		return Errorf(op, KindInvalid, "名称最多 %d 个字 (name is at most %d characters)", maxItemName, maxItemName)
	case utf8.RuneCountInString(it.Description) > maxItemDesc:
		return Errorf(op, KindInvalid, "描述最多 %d 个字 (description is at most %d characters)", maxItemDesc, maxItemDesc)
	case it.PricePerDay < 0 || it.Deposit < 0:
		return Errorf(op, KindInvalid, "价格和押金不能为负 (price and deposit cannot be negative)")
	case it.PricePerDay > maxUnitPrice || it.Deposit > maxUnitPrice:
		return Errorf(op, KindInvalid, "价格和押金最多 %s (price and deposit are at most %s)", maxUnitPrice, maxUnitPrice)
	case len(it.Photos) > maxItemPhotos:
		return Errorf(op, KindInvalid, "最多 %d 张照片 (at most %d photos)", maxItemPhotos, maxItemPhotos)
	}
	seen := map[string]bool{}
	tags := it.Tags[:0:0]
	for _, t := range it.Tags {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		tags = append(tags, t)
	}
	if len(tags) > maxItemTags {
		return Errorf(op, KindInvalid, "最多 %d 个标签 (at most %d tags)", maxItemTags, maxItemTags)
	}
	it.Tags = tags
	for _, p := range it.Photos {
		if strings.TrimSpace(p) == "" {
			return Errorf(op, KindInvalid, "照片地址不能为空 (photo URL is empty)")
		}
	}
	return nil
}

// Condition is the physical state of a unit as last inspected.
type Condition string

const (
	ConditionNew     Condition = "new"
	ConditionGood    Condition = "good"
	ConditionWorn    Condition = "worn"
	ConditionDamaged Condition = "damaged"
)

var conditionLabels = map[Condition]string{
	ConditionNew: "全新", ConditionGood: "良好", ConditionWorn: "有磨损", ConditionDamaged: "损坏",
}

// Valid reports whether c is a known condition.
func (c Condition) Valid() bool { _, ok := conditionLabels[c]; return ok }

// Label is the Chinese name shown to customers and staff.
func (c Condition) Label() string { return conditionLabels[c] }

// UnitStatus says whether a unit can be rented at all. Whether it is free on
// given days is a matter of reservations, not of status.
type UnitStatus string

const (
	UnitAvailable   UnitStatus = "available"
	UnitMaintenance UnitStatus = "maintenance"
	UnitRetired     UnitStatus = "retired"
)

// Valid reports whether s is a known status.
func (s UnitStatus) Valid() bool {
	return s == UnitAvailable || s == UnitMaintenance || s == UnitRetired
}

// Unit is one physical piece of an item.
type Unit struct {
	ID        UnitID
	ItemID    ItemID
	Serial    string // the shop's label on the gear, unique
	Condition Condition
	Status    UnitStatus
	Notes     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Validate checks a unit before it is stored.
func (u *Unit) Validate() error {
	const op = "rental.Unit.Validate"
	u.Serial = strings.TrimSpace(u.Serial)
	switch {
	case u.ItemID <= 0:
		return Errorf(op, KindInvalid, "请选择所属商品 (item is required)")
	case u.Serial == "":
		return Errorf(op, KindInvalid, "请填写编号 (serial is required)")
	case utf8.RuneCountInString(u.Serial) > 64:
		return Errorf(op, KindInvalid, "编号最多 64 个字符 (serial is at most 64 characters)")
	case !u.Condition.Valid():
		return Errorf(op, KindInvalid, "未知的成色 (unknown condition) %q", u.Condition)
	case !u.Status.Valid():
		return Errorf(op, KindInvalid, "未知的状态 (unknown status) %q", u.Status)
	}
	return nil
}

// Rentable reports whether the unit may be given to a customer at all.
// Units in maintenance or retired never count as available.
func (u Unit) Rentable() bool { return u.Status == UnitAvailable }

// Inspected records the condition found at an inspection. A unit found
// damaged goes to maintenance, so that it is not handed to the next customer
// before someone has looked at it; putting it back is a staff decision.
func (u *Unit) Inspected(c Condition) {
	u.Condition = c
	if c == ConditionDamaged && u.Status == UnitAvailable {
		u.Status = UnitMaintenance
	}
}
