package assistant

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

func words(t *testing.T, text string) []string {
	t.Helper()
	lx, err := sharedLexicon()
	if err != nil {
		t.Fatal(err)
	}
	return lx.analyze(text).words
}

func TestSynonymsFold(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string // all must be among the words
		not  []string
	}{
		{"鱼杆", []string{"鱼竿"}, []string{"鱼杆"}},
		{"钓鲫的杆子", []string{"鲫鱼", "鱼竿"}, nil},
		{"鲤鱼杆", []string{"鲤鱼竿", "鲤鱼", "鱼竿"}, []string{"鲤鱼杆"}},
		{"押金咋退", []string{"押金", "怎么", "退还"}, nil},
		{"保证金返还", []string{"押金", "退还"}, nil},
		{"卷线器", []string{"渔轮"}, nil},
		{"绕线轮怎么上线", []string{"渔轮", "绕线"}, nil},
		{"纺车轮", []string{"纺车轮", "渔轮"}, nil},
		{"大力马线", []string{"pe", "鱼线"}, nil},
		{"请问一下你们这个押金", []string{"押金"}, []string{"请问", "一下", "你们", "这个"}},
		{"５米４的ＭＬ竿", []string{"5.4", "米", "ml", "鱼竿"}, nil},
	} {
		got := words(t, tc.text)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q → %q, missing %q", tc.text, got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("%q → %q, should not contain %q", tc.text, got, w)
			}
		}
	}
}

func TestLexiconRejectsConflicts(t *testing.T) {
	if _, err := parseLexicon("鲫鱼: 鲫\n鲤鱼: 鲫\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("conflicting variant: err = %v", err)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"押金？！":       "押金  ",
		"ＰＥ线１．５号":    "pe线1.5号",
		"4米5的竿":      "4.5米的竿",
		"x+3=7":      "x+3 7",
		"你好，\u3000我": "你好  我",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	now := testNow // Wednesday 2026-06-03, Shanghai
	d := func(s string) rental.Date { x, _ := rental.ParseDate(s); return x }
	for _, tc := range []struct {
		text     string
		from, to string // to is exclusive; "" means no date
	}{
		{"有没有鲫鱼竿", "", ""},
		{"2号线多粗", "", ""},
		{"1.5号的子线", "", ""},
		{"袖钩1-3号", "", ""},
		{"今天有吗", "2026-06-03", "2026-06-04"},
		{"明天想租", "2026-06-04", "2026-06-05"},
		{"后天", "2026-06-05", "2026-06-06"},
		{"这周六有吗", "2026-06-06", "2026-06-07"},
		{"周六", "2026-06-06", "2026-06-07"},
		{"星期天", "2026-06-07", "2026-06-08"},
		{"这周一", "2026-06-08", "2026-06-09"}, // this Monday has passed: next one
		{"下周六", "2026-06-13", "2026-06-14"},
		{"这周末", "2026-06-06", "2026-06-08"},
		{"下周末", "2026-06-13", "2026-06-15"},
		{"6月8号还有吗", "2026-06-08", "2026-06-09"},
		{"6月8日到10日", "2026-06-08", "2026-06-11"},
		{"6月8号到6月10号", "2026-06-08", "2026-06-11"},
		{"8号到10号", "2026-06-08", "2026-06-11"},
		{"1号", "2026-07-01", "2026-07-02"}, // passed this month: next month's
		{"5月1号", "2027-05-01", "2027-05-02"},
		{"周六周日两天", "2026-06-06", "2026-06-08"},
		{"周六租3天", "2026-06-06", "2026-06-09"},
		{"明天开始用两天", "2026-06-04", "2026-06-06"},
		{"2月30号", "", ""},
	} {
		p, rest, ok := parsePeriod(normalize(tc.text), now)
		if tc.from == "" {
			if ok {
				t.Errorf("%q: got %v, want no date", tc.text, p)
			}
			continue
		}
		if !ok || p.From != d(tc.from) || p.To != d(tc.to) {
			t.Errorf("%q: got %v ok=%v, want %s/%s", tc.text, p, ok, tc.from, tc.to)
		}
		if strings.Contains(rest, "周六") || strings.Contains(rest, "明天") {
			t.Errorf("%q: the date is still in the text for retrieval: %q", tc.text, rest)
		}
	}
}

func TestPeriodTextAndLinks(t *testing.T) {
	p := rental.Period{From: rental.Date{Year: 2026, Month: 6, Day: 6}, To: rental.Date{Year: 2026, Month: 6, Day: 8}}
	if got := periodText(p); got != "6月6日（周六）至6月7日（周日）" {
		t.Errorf("periodText = %q", got)
	}
	if got := itemURL("https://shop.example/", 7, p, true); got != "https://shop.example/items/7?from=2026-06-06&to=2026-06-08" {
		t.Errorf("itemURL = %q", got)
	}
	if got := itemURL("", 7, p, false); got != "/items/7" {
		t.Errorf("itemURL without base = %q", got)
	}
}

func TestRenderPlaceholders(t *testing.T) {
	s := rental.DefaultShopSettings()
	s.DepositWaived = map[rental.Tier]bool{"gold": true, "silver": false}
	got := render("营业时间：{营业时间}。逾期每天 {逾期费}，宽限 {宽限期}，{免押会员}免押。", s)
	want := "营业时间：每天 06:00–20:00。逾期每天 20 元，宽限 12 小时，金卡免押。"
	if got != want {
		t.Errorf("render = %q\nwant     %q", got, want)
	}
	s.Hours[time.Saturday] = rental.DayHours{Open: 5 * 60, Close: 21 * 60}
	s.Hours[time.Sunday] = rental.DayHours{Open: 5 * 60, Close: 21 * 60}
	s.Hours[time.Tuesday] = rental.DayHours{Closed: true}
	if got := hoursText(s.Hours); got != "周一 06:00–20:00，周二 休息，周三至周五 06:00–20:00，周六至周日 05:00–21:00" {
		t.Errorf("hoursText = %q", got)
	}
	if got := render("{免押会员}", rental.DefaultShopSettings()); !strings.Contains(got, "暂未开放") {
		t.Errorf("no waived tiers: %q", got)
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{1500: "15 元", 1250: "12.50 元", 5: "0.05 元", 0: "0 元"} {
		if got := yuan(fen); got != want {
			t.Errorf("yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}
