package assistant

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

// Dates in questions, read modestly: the customer's "今天/明天/后天/大后天",
// "(这|本|下)周六", "星期天", "(这|下)周末", "6月8号", "8号" (not "2号线"),
// a range of two of those joined by 到/至/-/~, and "租3天"/"用两天" after a
// start day. Everything is a calendar day in Asia/Shanghai. A date that has
// passed this year (or month, for "8号") means the next one.

var (
	reMonthDay = regexp.MustCompile(`(\d{1,2})\s*月\s*(\d{1,2})\s*[号日]?`)
	// A bare day number: not after a digit, a dot or a dash (1.5号, 1-3号),
	// not before what makes it a size (2号线, 3号钩, 5号竿).
	reDay      = regexp.MustCompile(`(?:^|[^\d.\-–~])((\d{1,2})\s*[号日])(?:[^线钩竿杆轮铅漂的]|$)`)
	reRelative = regexp.MustCompile(`大后天|后天|明天|明日|今天|今日|今晚|明早|明晚`)
	reWeekday  = regexp.MustCompile(`(这个?|本|下个?)?(?:周|星期|礼拜)([一二三四五六日天])`)
	reWeekend  = regexp.MustCompile(`(这个?|本|下个?)?周末`)
	reDuration = regexp.MustCompile(`(?:租|用|玩|钓)\s*([0-9一二两三四五六七八九十]{1,3})\s*天`)
	reRangeSep = regexp.MustCompile(`^\s*(到|至|-|–|~|和|跟)\s*`)
)

var cnDigits = map[rune]int{'一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9, '十': 10}

func cnNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	r := []rune(s)
	switch {
	case len(r) == 1:
		n, ok := cnDigits[r[0]]
		return n, ok
	case len(r) == 2 && r[0] == '十': // 十五
		n, ok := cnDigits[r[1]]
		return 10 + n, ok
	case len(r) == 2 && r[1] == '十': // 二十
		n, ok := cnDigits[r[0]]
		return n * 10, ok
	case len(r) == 3 && r[1] == '十':
		a, ok1 := cnDigits[r[0]]
		b, ok2 := cnDigits[r[2]]
		return a*10 + b, ok1 && ok2
	}
	return 0, false
}

type dateHit struct {
	start, end int // byte offsets in the text
	from, to   rental.Date
}

// findDates lists the date expressions of text, in order.
func findDates(text string, today rental.Date) []dateHit {
	var hits []dateHit
	taken := make([]bool, len(text)+1)
	claim := func(a, b int, from, to rental.Date) {
		for i := a; i < b; i++ {
			if taken[i] {
				return
			}
		}
		for i := a; i < b; i++ {
			taken[i] = true
		}
		hits = append(hits, dateHit{a, b, from, to})
	}
	for _, m := range reMonthDay.FindAllStringSubmatchIndex(text, -1) {
		mo, _ := strconv.Atoi(text[m[2]:m[3]])
		d, _ := strconv.Atoi(text[m[4]:m[5]])
		if date, ok := nextMonthDay(today, time.Month(mo), d); ok {
			claim(m[0], m[1], date, date)
		} else {
			for i := m[0]; i < m[1]; i++ {
				taken[i] = true // "2月30号" is no date, and its "30号" is not one either
			}
		}
	}
	for _, m := range reRelative.FindAllStringIndex(text, -1) {
		var n int
		switch text[m[0]:m[1]] {
		case "明天", "明日", "明早", "明晚":
			n = 1
		case "后天":
			n = 2
		case "大后天":
			n = 3
		}
		claim(m[0], m[1], today.AddDays(n), today.AddDays(n))
	}
	for _, m := range reWeekend.FindAllStringSubmatchIndex(text, -1) {
		next := m[2] >= 0 && strings.HasPrefix(text[m[2]:m[3]], "下")
		sat := weekdayDate(today, time.Saturday, next)
		claim(m[0], m[1], sat, sat.AddDays(1))
	}
	for _, m := range reWeekday.FindAllStringSubmatchIndex(text, -1) {
		next := m[2] >= 0 && strings.HasPrefix(text[m[2]:m[3]], "下")
		wd := map[string]time.Weekday{"一": time.Monday, "二": time.Tuesday, "三": time.Wednesday, "四": time.Thursday,
			"五": time.Friday, "六": time.Saturday, "日": time.Sunday, "天": time.Sunday}[text[m[4]:m[5]]]
		d := weekdayDate(today, wd, next)
		claim(m[0], m[1], d, d)
	}
	// reDay consumes the character after a day number, so that "8号到10号"
	// finds both, scanning resumes right after each number's 号.
	for pos := 0; pos < len(text); {
		m := reDay.FindStringSubmatchIndex(text[pos:])
		if m == nil {
			break
		}
		d, _ := strconv.Atoi(text[pos+m[4] : pos+m[5]])
		if date, ok := nextDayOfMonth(today, d); ok {
			claim(pos+m[2], pos+m[3], date, date)
		}
		pos += m[3]
	}
	// In text order, so that ranges read left to right.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].start < hits[j-1].start; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	return hits
}

// nextMonthDay is month/day this year, or next year once it has passed.
func nextMonthDay(today rental.Date, m time.Month, d int) (rental.Date, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return rental.Date{}, false
	}
	for _, y := range []int{today.Year, today.Year + 1} {
		t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if t.Month() != m { // 2月30号
			return rental.Date{}, false
		}
		date := rental.Date{Year: y, Month: m, Day: d}
		if !date.Before(today) {
			return date, true
		}
	}
	return rental.Date{}, false
}

// nextDayOfMonth is day d of this month, or of next month once it has passed.
func nextDayOfMonth(today rental.Date, d int) (rental.Date, bool) {
	if d < 1 || d > 31 {
		return rental.Date{}, false
	}
	for i := 0; i < 2; i++ {
		t := time.Date(today.Year, today.Month+time.Month(i), 1, 0, 0, 0, 0, time.UTC)
		t2 := time.Date(t.Year(), t.Month(), d, 0, 0, 0, 0, time.UTC)
		if t2.Month() != t.Month() {
			continue
		}
		date := rental.Date{Year: t2.Year(), Month: t2.Month(), Day: t2.Day()}
		if !date.Before(today) {
			return date, true
		}
	}
	return rental.Date{}, false
}

// weekdayDate is the day wd of this week (Monday to Sunday, as in China),
// or of next week when next is set or this week's has passed.
func weekdayDate(today rental.Date, wd time.Weekday, next bool) rental.Date {
	t := time.Date(today.Year, today.Month, today.Day, 0, 0, 0, 0, time.UTC)
	mondayOffset := (int(t.Weekday()) + 6) % 7 // days since Monday
	target := (int(wd) + 6) % 7
	d := today.AddDays(target - mondayOffset)
	if next || d.Before(today) {
		d = d.AddDays(7)
	}
	return d
}

// parsePeriod reads the rental days a question asks about. ok is false when
// it names no date. rest is the text with the date expressions blanked, for
// retrieval.
func parsePeriod(text string, now time.Time) (p rental.Period, rest string, ok bool) {
	today := rental.DateOf(now)
	hits := findDates(text, today)
	if len(hits) == 0 {
		return rental.Period{}, text, false
	}
	from, last := hits[0].from, hits[0].to
	// "6月8号到10号", "周六周日": a second date right after the first.
	if len(hits) > 1 {
		between := text[hits[0].end:hits[1].start]
		if strings.TrimSpace(between) == "" || reRangeSep.MatchString(between) && len(strings.TrimSpace(reRangeSep.ReplaceAllString(between, ""))) == 0 {
			if !hits[1].to.Before(from) {
				last = hits[1].to
			}
		}
	}
	to := last.AddDays(1)
	if m := reDuration.FindStringSubmatch(text); m != nil {
		if n, ok := cnNumber(m[1]); ok && n >= 1 && n <= rental.MaxRentalDays {
			to = from.AddDays(n)
		}
	}
	b := []byte(text)
	for _, h := range hits {
		for i := h.start; i < h.end && i < len(b); i++ {
			b[i] = ' '
		}
	}
	p, err := rental.NewPeriod(from, to)
	if err != nil {
		return rental.Period{}, text, false
	}
	return p, string(b), true
}

// periodText says a period the way a customer would: "6月8日（周六）" or
// "6月8日–6月10日".
func periodText(p rental.Period) string {
	day := func(d rental.Date) string {
		wd := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Weekday()
		return strconv.Itoa(int(d.Month)) + "月" + strconv.Itoa(d.Day) + "日（" + weekdayNames[wd] + "）"
	}
	if p.Days() == 1 {
		return day(p.From)
	}
	return day(p.From) + "至" + day(p.To.AddDays(-1))
}
