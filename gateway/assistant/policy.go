package assistant

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tacklegate/tacklegate/rental"
)

// HandoffReason says why a conversation goes to a person.
type HandoffReason string

const (
	ReasonAsked         HandoffReason = "asked"          // the customer asked for a person (转人工)
	ReasonDispute       HandoffReason = "dispute"        // a payment or damage dispute, a complaint
	ReasonLowConfidence HandoffReason = "low_confidence" // nothing in the KB or catalog answers it
	ReasonUnhelpful     HandoffReason = "unhelpful"      // the customer said two answers in a row did not help
	ReasonImage         HandoffReason = "image"          // a photo and no vision model (or it declined)
)

// Mode says when the assistant answers.
type Mode string

const (
	// ModeUnattended answers when nobody is online or the shop is closed;
	// otherwise messages go straight to the people on duty. The default.
	ModeUnattended Mode = "unattended"
	// ModeFirst answers every message first; people take over on handoff.
	ModeFirst Mode = "first"
	// ModeOff never answers.
	ModeOff Mode = "off"
)

// ParseMode reads a mode name ("" is ModeUnattended).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(strings.ToLower(s))); m {
	case "":
		return ModeUnattended, nil
	case ModeUnattended, ModeFirst, ModeOff:
		return m, nil
	}
	return "", rental.Errorf("assistant.ParseMode", rental.KindInvalid, "assistant mode must be unattended, first or off, got %q", s)
}

// Presence is what the bridge knows about the people who could answer, at
// the moment a message arrives.
type Presence struct {
	StaffOnline int           // people on duty and online now
	Queue       int           // conversations waiting for a person ahead of this one
	TypicalWait time.Duration // recent typical wait until a person answers; 0 unknown
	// Hours are the shop's opening hours; the zero value means unknown,
	// and then only StaffOnline decides.
	Hours    rental.OpeningHours
	Assigned bool // a person is handling this conversation: the assistant keeps out
	Queued   bool // this conversation already waits for a person
}

func (p Presence) open(now time.Time) bool {
	if p.Hours == (rental.OpeningHours{}) {
		return true
	}
	return p.Hours.IsOpen(now)
}

// Policy decides when the assistant answers and when it hands over. It is
// pure: the same inputs always give the same decision.
type Policy struct {
	Mode Mode
	// UnhelpfulLimit is how many unhelpful answers in a row hand over;
	// 0 means 2.
	UnhelpfulLimit int
}

func (p Policy) limit() int {
	if p.UnhelpfulLimit <= 0 {
		return 2
	}
	return p.UnhelpfulLimit
}

// ShouldAnswer reports whether the assistant answers a message now.
func (p Policy) ShouldAnswer(pr Presence, now time.Time) bool {
	if pr.Assigned {
		return false
	}
	switch p.Mode {
	case ModeOff:
		return false
	case ModeFirst:
		return true
	}
	return pr.StaffOnline == 0 || !pr.open(now)
}

var (
	// "人工饵" (lures) is not a request for a person.
	reNotAPerson = regexp.MustCompile(`人工(鱼)?饵|人工湖|人工养殖`)
	reAskPerson  = regexp.MustCompile(`转人工|人工|真人|找客服|联系客服|要客服|叫客服|接客服|客服在|店员在|找店员|叫店员|老板在吗|找老板|不要机器人|机器人吗|是机器人|跟人说|和人说|找个人`)
	reDispute    = regexp.MustCompile(strings.Join([]string{
		`投诉`, `举报`, `12315`, `消协`, `消费者协会`, `维权`, `曝光`,
		`凭什么`, `乱扣`, `多扣`, `扣错`, `扣我`, `扣了我`, `为什么扣`, `为啥扣`, `扣.{0,4}不合理`,
		`重复扣款`, `扣了两次`, `付了两次`, `多收`, `收多了`, `乱收费`, `乱收钱`,
		`退款不到`, `退款.{0,6}一直没`, `一直没退`, `不给退`, `不退押金`, `不退钱`, `拒绝退`,
		`要我赔`, `让我赔`, `赔这么多`, `赔偿不合理`, `要求赔偿`, `不赔`,
		`不是我.{0,3}(弄|搞|摔|碰|干)`, `本来就(坏|是坏|有问题|断)`, `拿的时候就`, `取的时候就`, `之前就(坏|有)`, `冤枉`,
		`骗子`, `坑人`, `欺诈`, `黑店`, `讹人`, `讹我`,
	}, "|"))
	reUnhelpful = regexp.MustCompile(`没用|没有用|没啥用|不对|答非所问|不是这个|不是我要|不是我问|看不懂|没听懂|听不懂|不明白|没明白|说的啥|什么鬼|胡说|乱说|还是不行|没解决|不是问这个|问的不是`)
	reHelpful   = regexp.MustCompile(`^(谢谢|多谢|谢啦|谢了|感谢|好的|好滴|好嘞|明白了?|懂了|知道了|了解了?|解决了|可以了|行了|好了|有用|ok|okay|收到)+$`)
)

// Trigger checks a message for what hands over at once, whatever the
// knowledge base says: the customer asking for a person, or a dispute.
func (p Policy) Trigger(text string) HandoffReason {
	norm := reNotAPerson.ReplaceAllString(normalize(text), " ")
	compact := strings.Join(strings.Fields(norm), "")
	switch {
	case reDispute.MatchString(compact):
		return ReasonDispute
	case reAskPerson.MatchString(compact):
		return ReasonAsked
	}
	return ""
}

// Feedback is what a message says about the previous answer.
type Feedback int

const (
	FeedbackNone      Feedback = iota
	FeedbackHelpful            // 谢谢, 明白了, 👍 — and nothing else
	FeedbackUnhelpful          // 没用, 不对, 答非所问…
)

// ReadFeedback classifies a message as feedback on the answer before it.
func ReadFeedback(text string) Feedback {
	norm := strings.Join(strings.Fields(normalize(text)), "")
	compact := strings.Trim(norm, "~～!！.。,，")
	switch {
	case reUnhelpful.MatchString(norm):
		return FeedbackUnhelpful
	case strings.TrimSpace(text) != "" && strings.Trim(text, "👍👌🙏💯 ") == "":
		return FeedbackHelpful // normalize drops emoji
	case compact != "" && utf8.RuneCountInString(compact) <= 12 && reHelpful.MatchString(compact):
		return FeedbackHelpful
	case strings.Trim(text, "?？ ") == "" && strings.ContainsAny(text, "?？") && utf8.RuneCountInString(text) >= 2:
		return FeedbackUnhelpful // "？？"
	}
	return FeedbackNone
}

// HandsOver reports whether an unhelpful streak has reached the limit.
func (p Policy) HandsOver(streak int) bool { return streak >= p.limit() }

// HandoffMessage is the honest message a customer gets when handed over:
// why, and what happens next — a person now, a queue with its length and
// likely wait, or the next opening time.
func (p Policy) HandoffMessage(reason HandoffReason, pr Presence, now time.Time) string {
	var head string
	switch reason {
	case ReasonAsked:
		head = "好的，这就为您转人工。"
	case ReasonDispute:
		head = "这个问题需要店员来处理，已为您转给店员。"
	case ReasonUnhelpful:
		head = "抱歉没能帮上忙，已为您转给店员。"
	case ReasonImage:
		head = "图片需要店员来看，已为您转给店员。"
	default:
		head = "这个问题我暂时答不上来，已为您转给店员。"
	}
	if pr.Queued {
		return head + "您已经在排队了，店员接入后会一起回复，不用重复发送。"
	}
	if !pr.open(now) {
		return head + closedText(pr.Hours, now)
	}
	if pr.StaffOnline == 0 {
		return head + "店员暂时都不在线，一上线就会回复您。您的消息已经保存，不用重复发送。"
	}
	if pr.Queue == 0 {
		return head + "店员马上回复您，请稍等。"
	}
	msg := fmt.Sprintf("%s前面还有 %d 位顾客在等", head, pr.Queue)
	if pr.TypicalWait > 0 {
		mins := int((pr.TypicalWait + time.Minute - 1) / time.Minute)
		msg += fmt.Sprintf("，预计等待约 %d 分钟", mins)
	}
	return msg + "。您的消息已经保存，不用重复发送。"
}

// closedText says when someone will answer: the next opening, as "今天
// 08:00", "明天 06:00" or "周一 08:00".
func closedText(h rental.OpeningHours, now time.Time) string {
	at, ok := h.NextOpening(now)
	if !ok {
		return "店里暂停营业，恢复营业后店员会回复您。您的消息已经保存。"
	}
	local := at.In(rental.Shanghai())
	today := rental.DateOf(now)
	var day string
	switch rental.DateOf(at) {
	case today:
		day = "今天"
	case today.AddDays(1):
		day = "明天"
	default:
		day = weekdayNames[local.Weekday()]
	}
	return fmt.Sprintf("现在是非营业时间（营业时间：%s），店员%s %s 上班后会第一时间回复您。您的消息已经保存，不用重复发送。",
		hoursText(h), day, local.Format("15:04"))
}
