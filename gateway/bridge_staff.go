package gateway

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Staff actions shared by the WeCom commands and the staff console:
// transfer and tags. The console runs the bridge's own command code in a
// transaction marked with the acting staff member (btx.console), so that
// what WeCom would have answered them is not sent to their phone: the
// console shows the outcome itself.

// maxTags bounds a conversation's tags.
const (
	maxTags   = 10
	maxTagLen = 12 // characters
)

// Console runs fn as staff member userID acting from the console, in one
// bridge transaction. Only registered, active staff act (the owner reads).
func (b *Bridge) Console(ctx context.Context, userID string, fn func(t *btx, sm store.StaffMember) error) error {
	cause := "console:" + userID + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return b.inTx(ctx, cause, func(t *btx) error {
		t.console = userID
		sm, err := t.StaffMember(userID)
		if rental.ErrorKind(err) == rental.KindNotFound || (err == nil && !sm.Active) {
			return rental.Errorf("bridge.Console", rental.KindForbidden, "只有登记在册的店员可以接待和回复 (only registered, active staff members can answer)")
		}
		if err != nil {
			return err
		}
		return fn(t, sm)
	})
}

// findStaff resolves a colleague by WeCom userid or by name.
func (t *btx) findStaff(who string) (store.StaffMember, bool, error) {
	who = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(who), "@"))
	if who == "" {
		return store.StaffMember{}, false, nil
	}
	sm, err := t.StaffMember(who)
	if err == nil {
		return sm, sm.Active, nil
	}
	if rental.ErrorKind(err) != rental.KindNotFound {
		return sm, false, err
	}
	loads, err := t.BridgeTx.StaffLoads()
	if err != nil {
		return sm, false, err
	}
	for _, l := range loads {
		if l.Name == who {
			sm, err := t.StaffMember(l.UserID)
			return sm, err == nil && sm.Active, err
		}
	}
	return store.StaffMember{}, false, nil
}

// transfer gives a live conversation to a colleague: what they have not
// seen is delivered, they get the last few messages, and the one it came
// from is told.
func (t *btx) transfer(sm store.StaffMember, code rental.ConversationID, who string) error {
	me := []string{sm.WeComUserID}
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	if !conv.Live() {
		return t.notify(me, fmt.Sprintf("会话 #%s 已结束，不能转接。", conv.Code()))
	}
	to, ok, err := t.findStaff(who)
	if err != nil {
		return err
	}
	if !ok {
		return t.notify(me, fmt.Sprintf("没有在职店员「%s」。请写对方的企业微信账号或名字，例如 /transfer %s xiaoli", who, conv.Code()))
	}
	if to.WeComUserID == conv.Assignee {
		return t.notify(me, fmt.Sprintf("%s 已经由%s接待。", rental.StaffTag(conv.ID, t.label(conv)), bridgeStaffName(to)))
	}
	from := conv.Assignee
	if err := t.handOver(conv, to, fmt.Sprintf("由%s转给你", bridgeStaffName(sm))); err != nil {
		return err
	}
	if sm.Current == conv.ID {
		if err := t.SetCurrent(sm.WeComUserID, 0); err != nil {
			return err
		}
	}
	tag := rental.StaffTag(conv.ID, t.label(conv))
	if err := t.notify(me, fmt.Sprintf("已把 %s 转给%s。", tag, bridgeStaffName(to))); err != nil {
		return err
	}
	if from != "" && from != sm.WeComUserID && from != to.WeComUserID {
		return t.notify([]string{from}, fmt.Sprintf("%s 已由%s转给%s。", tag, bridgeStaffName(sm), bridgeStaffName(to)))
	}
	return nil
}

// handOver assigns conv to `to`, delivers what waits, makes it their
// current conversation when they have none and tells them why, with the
// last few messages.
func (t *btx) handOver(conv *rental.Conversation, to store.StaffMember, why string) error {
	if err := conv.Assign(to.WeComUserID, t.now); err != nil {
		return err
	}
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	if err := t.makeCurrentIfIdle(to.WeComUserID, conv.ID); err != nil {
		return err
	}
	recent, err := t.Messages(conv.ID, 5)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s。回复请用「#%s 内容」或 /take %s。", rental.StaffTag(conv.ID, t.label(conv)), why, conv.Code(), conv.Code())
	if len(recent) > 0 {
		b.WriteString("\n最近消息：")
		for _, m := range recent {
			fmt.Fprintf(&b, "\n%s %s：%s", m.CreatedAt.In(bridgeZone).Format("01-02 15:04"), t.who(m), m.Preview(40))
		}
	}
	if err := t.notify([]string{to.WeComUserID}, b.String()); err != nil {
		return err
	}
	return t.flush(store.SideStaff, conv.ID, 0)
}

// cleanTags trims, de-duplicates and checks tags.
func cleanTags(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, tag := range in {
		tag = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tag), "#"))
		if tag == "" || seen[tag] {
			continue
		}
		if utf8.RuneCountInString(tag) > maxTagLen {
			return nil, rental.Errorf("bridge.tags", rental.KindInvalid, "标签「%s」太长，最多 %d 个字 (tag longer than %d characters)", tag, maxTagLen, maxTagLen)
		}
		seen[tag] = true
		out = append(out, tag)
	}
	if len(out) > maxTags {
		return nil, rental.Errorf("bridge.tags", rental.KindInvalid, "最多 %d 个标签 (at most %d tags)", maxTags, maxTags)
	}
	return out, nil
}

// setTags replaces a conversation's tags.
func (t *btx) setTags(conv *rental.Conversation, tags []string) error {
	clean, err := cleanTags(tags)
	if err != nil {
		return err
	}
	conv.Tags = clean
	return t.SaveConversation(conv)
}

// tagCommand answers /tag and /untag.
func (t *btx) tagCommand(sm store.StaffMember, code rental.ConversationID, words string, add bool) error {
	me := []string{sm.WeComUserID}
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	given := strings.FieldsFunc(words, func(r rune) bool { return r == ' ' || r == '\u3000' || r == ',' || r == '，' || r == '、' })
	tags := append([]string(nil), conv.Tags...)
	if add {
		tags = append(tags, given...)
	} else {
		drop := map[string]bool{}
		for _, g := range given {
			drop[strings.TrimPrefix(g, "#")] = true
		}
		kept := tags[:0]
		for _, tag := range tags {
			if !drop[tag] {
				kept = append(kept, tag)
			}
		}
		tags = kept
	}
	if err := t.setTags(conv, tags); err != nil {
		if rental.ErrorKind(err) == rental.KindInvalid {
			return t.notify(me, rental.ErrorMessage(err))
		}
		return err
	}
	shown := "（无）"
	if len(conv.Tags) > 0 {
		shown = strings.Join(conv.Tags, "、")
	}
	return t.notify(me, fmt.Sprintf("%s 标签：%s", rental.StaffTag(conv.ID, t.label(conv)), shown))
}
