package assistant

import (
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/rental"
)

var shopHours = rental.EveryDay(6*60, 20*60)

func TestShouldAnswer(t *testing.T) {
	day := time.Date(2026, 6, 3, 10, 0, 0, 0, rental.Shanghai())
	night := time.Date(2026, 6, 3, 23, 30, 0, 0, rental.Shanghai())
	for _, tc := range []struct {
		name string
		mode Mode
		pr   Presence
		at   time.Time
		want bool
	}{
		{"unattended, staff online, open", ModeUnattended, Presence{StaffOnline: 2, Hours: shopHours}, day, false},
		{"unattended, nobody online", ModeUnattended, Presence{Hours: shopHours}, day, true},
		{"unattended, closed though someone is online", ModeUnattended, Presence{StaffOnline: 1, Hours: shopHours}, night, true},
		{"unattended, hours unknown", ModeUnattended, Presence{StaffOnline: 1}, night, false},
		{"default mode is unattended", "", Presence{}, day, true},
		{"first, staff online", ModeFirst, Presence{StaffOnline: 3, Hours: shopHours}, day, true},
		{"off", ModeOff, Presence{}, night, false},
		{"a person has the conversation", ModeFirst, Presence{Assigned: true}, night, false},
	} {
		if got := (Policy{Mode: tc.mode}).ShouldAnswer(tc.pr, tc.at); got != tc.want {
			t.Errorf("%s: ShouldAnswer = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTrigger(t *testing.T) {
	var p Policy
	for text, want := range map[string]HandoffReason{
		"转人工":            ReasonAsked,
		"人工客服":           ReasonAsked,
		"我要找真人":          ReasonAsked,
		"老板在吗":           ReasonAsked,
		"你是机器人吧 找客服":     ReasonAsked,
		"我要投诉":           ReasonDispute,
		"凭什么扣我押金":        ReasonDispute,
		"为什么扣了200":       ReasonDispute,
		"退款不到账 都一周了":     ReasonDispute,
		"押金一直没退":         ReasonDispute,
		"竿子本来就是坏的 不是我弄的": ReasonDispute,
		"赔偿不合理":          ReasonDispute,
		"微信付了两次":         ReasonDispute,
		"押金咋退":           "",
		"杆子断了咋赔":         "",
		"晚还一天扣多少":        "",
		"路亚用人工饵好还是活饵好":   "",
		"我昨天还的押金还没到":     "",
	} {
		if got := p.Trigger(text); got != want {
			t.Errorf("Trigger(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestReadFeedback(t *testing.T) {
	for text, want := range map[string]Feedback{
		"谢谢":      FeedbackHelpful,
		"好的 明白了！": FeedbackHelpful,
		"👍":       FeedbackHelpful,
		"OK":      FeedbackHelpful,
		"没用":      FeedbackUnhelpful,
		"答非所问":    FeedbackUnhelpful,
		"不是这个意思，我问的是押金": FeedbackUnhelpful,
		"？？":       FeedbackUnhelpful,
		"押金咋退":     FeedbackNone,
		"好的，那押金多少": FeedbackNone,
		"?":        FeedbackNone,
	} {
		if got := ReadFeedback(text); got != want {
			t.Errorf("ReadFeedback(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestHandoffMessage(t *testing.T) {
	var p Policy
	day := time.Date(2026, 6, 3, 10, 0, 0, 0, rental.Shanghai())   // Wednesday
	night := time.Date(2026, 6, 3, 23, 0, 0, 0, rental.Shanghai()) // after closing
	dawn := time.Date(2026, 6, 4, 4, 0, 0, 0, rental.Shanghai())   // before opening
	for _, tc := range []struct {
		name   string
		reason HandoffReason
		pr     Presence
		at     time.Time
		want   []string
	}{
		{"asked, someone free", ReasonAsked, Presence{StaffOnline: 1, Hours: shopHours}, day, []string{"这就为您转人工", "马上回复"}},
		{"queue with wait", ReasonLowConfidence, Presence{StaffOnline: 2, Queue: 3, TypicalWait: 4*time.Minute + time.Second, Hours: shopHours}, day,
			[]string{"答不上来", "前面还有 3 位", "约 5 分钟", "不用重复发送"}},
		{"queue, wait unknown", ReasonDispute, Presence{StaffOnline: 1, Queue: 1, Hours: shopHours}, day, []string{"需要店员来处理", "前面还有 1 位"}},
		{"closed at night", ReasonUnhelpful, Presence{Hours: shopHours}, night, []string{"没能帮上忙", "非营业时间", "每天 06:00–20:00", "明天 06:00"}},
		{"closed before dawn", ReasonImage, Presence{Hours: shopHours}, dawn, []string{"图片", "今天 06:00"}},
		{"open, nobody online", ReasonAsked, Presence{Hours: shopHours}, day, []string{"暂时都不在线"}},
		{"already queued", ReasonLowConfidence, Presence{Queued: true, Hours: shopHours}, night, []string{"已经在排队"}},
	} {
		got := p.HandoffMessage(tc.reason, tc.pr, tc.at)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
	}
	// Closed on Thursdays: Wednesday night's message names Friday.
	h := shopHours
	h[time.Thursday] = rental.DayHours{Closed: true}
	if got := p.HandoffMessage(ReasonAsked, Presence{Hours: h}, night); !strings.Contains(got, "周五 06:00") {
		t.Errorf("next opening after a closed day: %q", got)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeUnattended, "first": ModeFirst, " OFF ": ModeOff, "unattended": ModeUnattended} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseMode("always"); err == nil {
		t.Error("ParseMode(always) accepted")
	}
}
