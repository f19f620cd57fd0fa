package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/rental"
)

// media is a download made before the processing transaction (no network
// inside a transaction).
type bridgeMedia struct {
	data        []byte
	contentType string
	failure     string // set when the media could not be had and the message goes on without it
}

// fetchMedia downloads media on arrival (WeChat and WeCom keep it three
// days). A failure that may pass is returned, to retry the callback later,
// until the last attempt: then, and for a failure that cannot pass (the
// media expired), the message is stored without the media and says so,
// rather than lost.
func (b *Bridge) fetchMedia(ctx context.Context, ref store.InboundRef, get func(context.Context, string) ([]byte, string, error), id string) (bridgeMedia, error) {
	if id == "" {
		return bridgeMedia{failure: "没有媒体文件"}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, b.opts.CallTimeout)
	defer cancel()
	data, ct, err := get(cctx, id)
	if err == nil {
		return bridgeMedia{data: data, contentType: ct}, nil
	}
	if bridgeRetryable(err) && ref.Attempts+1 < b.opts.MaxAttempts {
		return bridgeMedia{}, err
	}
	b.log.Warn("bridge: media could not be downloaded; storing the message without it", "inbound", ref.ID, "error", err)
	return bridgeMedia{failure: bridgeReason(err)}, nil
}

// customerInbound handles a mini-program push.
func (b *Bridge) customerInbound(ctx context.Context, ref store.InboundRef, in *rental.Inbound) error {
	msg, err := wechat.ParsePush(in.Payload)
	if err != nil {
		b.log.Error("bridge: stored push cannot be read; skipped", "inbound", in.ID, "error", err)
		return b.claimOnly(ctx, in.ID)
	}
	if msg.MsgType == "event" && msg.Event != "user_enter_tempsession" {
		return b.claimOnly(ctx, in.ID)
	}
	member, _, _, err := b.db.LoginWeChat(ctx, b.wechat.AppID(), msg.FromUserName, "")
	if err != nil {
		return err
	}
	cause := "in" + strconv.FormatInt(in.ID, 10)
	if msg.MsgType == "event" {
		// Opening the chat gives WeChat's short window (two replies within
		// a minute): replies that wait for the customer go out now.
		return b.inTx(ctx, cause, func(t *btx) error {
			if ok, err := t.ClaimInbound(in.ID); !ok || err != nil {
				return err
			}
			return t.releaseWaiting(member.ID)
		})
	}

	sentAt := in.SentAt
	if sentAt.IsZero() {
		sentAt = b.now()
	}
	cm := rental.ChatMessage{
		Direction: rental.ChatIn, Author: rental.CustomerAuthor(member.ID), Upstream: "wechat:" + in.DedupeKey,
		CreatedAt: sentAt, ToStaff: rental.Delivery{Status: rental.DeliveryStored},
	}
	switch msg.MsgType {
	case "text":
		cm.Kind, cm.Text = rental.ChatText, msg.Content
	case "image", "voice":
		m, err := b.fetchMedia(ctx, ref, b.wechat.GetMedia, msg.MediaID)
		if err != nil {
			return err
		}
		cm.Kind, cm.Media, cm.MediaType = rental.ChatKind(msg.MsgType), m.data, m.contentType
		if msg.MsgType == "voice" {
			// Kept as delivered (AMR), with the format WeChat named.
			cm.VoiceFormat = msg.Format
			if d, ok := rental.AMRDuration(m.data); ok {
				cm.Duration = d
			}
		}
		if m.failure != "" {
			cm.Text = fmt.Sprintf("[%s未能保存：%s]", map[string]string{"image": "图片", "voice": "语音"}[msg.MsgType], m.failure)
		}
	case "miniprogrampage":
		cm.Kind, cm.Text = rental.ChatPage, strings.TrimSpace(msg.Title+"\n"+msg.PagePath)
		if m, err := b.fetchMedia(ctx, ref, b.wechat.GetMedia, msg.ThumbMediaID); err != nil {
			return err
		} else if m.failure == "" {
			cm.Media, cm.MediaType = m.data, m.contentType
		}
	default:
		cm.Kind, cm.Text = rental.ChatText, "[顾客发来一条暂不支持的消息："+msg.MsgType+"]"
	}
	var ask *askTurn
	err = b.inTx(ctx, cause, func(t *btx) error {
		ask = nil
		if ok, err := t.ClaimInbound(in.ID); !ok || err != nil {
			return err
		}
		err := t.customerMessage(member, msg.FromUserName, &cm)
		ask = t.ask
		return err
	})
	if err == nil && ask != nil {
		ask.cause = cause
		b.startAsk(ctx, ask)
	}
	return err
}

// customerMessage files a customer's message: as the rating they were
// asked for, or in their live conversation (opened if needed), which is
// then assigned and forwarded, or answered by the auto-reply.
func (t *btx) customerMessage(member rental.Member, openID string, cm *rental.ChatMessage) error {
	if dup, err := t.Stored(cm.Upstream); err != nil || dup {
		return err // a duplicate was handled before; the claim still commits
	}
	latest, err := t.LatestConversation(member.ID)
	if err != nil {
		return err
	}
	if latest != nil && cm.Kind == rental.ChatText && latest.AwaitsRating(t.now, t.b.opts.RatingWindow) {
		if score, ok := rental.ParseRating(cm.Text); ok {
			return t.rating(latest, cm, score)
		}
	}
	conv, err := t.LiveConversation(member.ID)
	if err != nil {
		return err
	}
	if conv == nil {
		conv = &rental.Conversation{MemberID: member.ID, OpenID: openID, State: rental.ConversationOpen, OpenedAt: t.now}
		if latest != nil {
			conv.PrevID = latest.ID
		}
		if err := t.OpenConversation(conv); err != nil {
			return err
		}
	}
	if openID != "" {
		conv.OpenID = openID
	}
	conv.CustomerChannel = rental.CustomerViaWeChat
	if strings.HasPrefix(cm.Upstream, chatAppUpstream) {
		conv.CustomerChannel = rental.CustomerViaApp
	}
	if cm.CreatedAt.After(conv.LastCustomerAt) {
		conv.LastCustomerAt = cm.CreatedAt
	}
	if err := t.Append(conv, cm); err != nil {
		if errors.Is(err, store.ErrDuplicateMessage) {
			return nil // handled before; the claim still commits
		}
		return err
	}
	sticky := conv.Assignee
	if sticky == "" && latest != nil && latest.ID != conv.ID {
		sticky = latest.Assignee
	}
	ask, err := t.assistantTakes(conv, cm)
	if err != nil {
		return err
	}
	if ask != nil {
		ask.sticky = sticky
	}
	t.ask = ask
	if ask == nil || !ask.held {
		if err := t.route(conv, sticky, cm, ask == nil); err != nil {
			return err
		}
	}
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	return t.releaseWaiting(member.ID)
}

// route gives the conversation to people: assigned and forwarded, or
// waiting in the queue; away says whether the customer is told when nobody
// can answer (not when the assistant answers instead).
func (t *btx) route(conv *rental.Conversation, sticky string, cm *rental.ChatMessage, away bool) error {
	a, err := t.assign(conv, sticky)
	if err != nil {
		return err
	}
	if conv.Assignee != "" {
		if err := t.flush(store.SideStaff, conv.ID, cm.ID); err != nil {
			return err
		}
	}
	if away && (a.Reason == rental.AssignNobody || a.Reason == rental.AssignAllBusy) {
		return t.autoReply(conv, a, cm)
	}
	return nil
}

// assign keeps a conversation with its staff member while they are on
// duty, and otherwise chooses (rental.ChooseStaff). When nobody can take it
// the conversation keeps the staff member it had, if any. The outcome's
// Reason tells the caller whether the customer must be told to wait.
func (t *btx) assign(conv *rental.Conversation, sticky string) (rental.Assignment, error) {
	loads, err := t.StaffLoads()
	if err != nil {
		return rental.Assignment{}, err
	}
	for _, l := range loads {
		if l.UserID == conv.Assignee && l.OnDuty {
			return rental.Assignment{UserID: l.UserID, Reason: rental.AssignSticky}, nil
		}
	}
	a := rental.ChooseStaff(loads, sticky, conv.Assignee, t.b.opts.MaxOpen)
	if a.UserID == "" {
		return a, nil
	}
	if err := conv.Assign(a.UserID, t.now); err != nil {
		return a, err
	}
	return a, t.makeCurrentIfIdle(a.UserID, conv.ID)
}

// makeCurrentIfIdle points a staff member's plain text at conv when they
// have no current conversation, or only a resolved one: what they were
// just given is what they will answer.
func (t *btx) makeCurrentIfIdle(userID string, conv rental.ConversationID) error {
	sm, err := t.StaffMember(userID)
	if err != nil {
		return err
	}
	if sm.Current != 0 {
		cur, err := t.Conversation(sm.Current)
		if err == nil && cur.Live() {
			return nil
		}
	}
	return t.SetCurrent(userID, conv)
}

// autoReply tells the customer, at most once per AwayInterval, that nobody
// can answer right now, and tells on-duty staff about a conversation that
// waits because all of them are full.
func (t *btx) autoReply(conv *rental.Conversation, a rental.Assignment, cm *rental.ChatMessage) error {
	if a.Reason == rental.AssignAllBusy && conv.QueuedNoticeAt.IsZero() {
		loads, err := t.StaffLoads()
		if err != nil {
			return err
		}
		var onDuty []string
		for _, l := range loads {
			if l.OnDuty {
				onDuty = append(onDuty, l.UserID)
			}
		}
		text := fmt.Sprintf("%s 新会话在排队（大家都已接满 %d 个会话）。发送 /take %s 接待。\n顾客说：%s",
			rental.StaffTag(conv.ID, t.label(conv)), t.b.opts.MaxOpen, conv.Code(), cm.Preview(60))
		if err := t.notify(onDuty, text); err != nil {
			return err
		}
		conv.QueuedNoticeAt = t.now
	}
	if !conv.AwayReplyDue(t.now, t.b.opts.AwayInterval) {
		return nil
	}
	text := rental.TextBusyReply
	if a.Reason == rental.AssignNobody {
		text = t.b.opts.AwayText(t.now)
	}
	conv.AwayReplyAt = t.now
	return t.system(conv, text)
}

// system appends a message from the gateway itself to the customer and
// sends it.
func (t *btx) system(conv *rental.Conversation, text string) error {
	m := rental.ChatMessage{Direction: rental.ChatOut, Kind: rental.ChatText, Author: rental.SystemAuthor, Text: text,
		CreatedAt: t.now, ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
	if err := t.Append(conv, &m); err != nil {
		return err
	}
	return t.flush(store.SideCustomer, conv.ID, m.ID)
}

// rating stores the customer's answer to the rating question in the
// resolved conversation it belongs to, thanks them and tells the staff
// member who closed it.
func (t *btx) rating(conv *rental.Conversation, cm *rental.ChatMessage, score int) error {
	if err := conv.Rate(score, t.now); err != nil {
		return err
	}
	cm.ToStaff = rental.Delivery{} // told as a notice below, not forwarded
	if cm.CreatedAt.After(conv.LastCustomerAt) {
		conv.LastCustomerAt = cm.CreatedAt
	}
	if err := t.Append(conv, cm); err != nil {
		if errors.Is(err, store.ErrDuplicateMessage) {
			return nil
		}
		return err
	}
	if err := t.system(conv, rental.ThanksForRating(score)); err != nil {
		return err
	}
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	to := conv.ResolvedBy
	if to == "" {
		to = conv.Assignee
	}
	if to != "" {
		text := fmt.Sprintf("%s 顾客评分：%d 分 %s", rental.StaffTag(conv.ID, t.label(conv)), score, strings.Repeat("★", score)+strings.Repeat("☆", 5-score))
		if err := t.notify([]string{to}, text); err != nil {
			return err
		}
	}
	return t.releaseWaiting(conv.MemberID)
}

// releaseWaiting sends again the replies that waited for the customer to
// write (WeChat's 5-reply limit, or the 48-hour window with a subscribe
// notice).
func (t *btx) releaseWaiting(member rental.MemberID) error {
	convs, err := t.ReleaseWaiting(member)
	if err != nil {
		return err
	}
	for _, c := range convs {
		if err := t.flush(store.SideCustomer, c, 0); err != nil {
			return err
		}
	}
	return nil
}

// staffInbound handles a WeCom app callback: a staff member's reply or
// command.
func (b *Bridge) staffInbound(ctx context.Context, ref store.InboundRef, in *rental.Inbound) error {
	msg, err := wecom.ParseMessage(in.Payload)
	if err != nil {
		b.log.Error("bridge: stored WeCom callback cannot be read; skipped", "inbound", in.ID, "error", err)
		return b.claimOnly(ctx, in.ID)
	}
	if msg.MsgType == "event" {
		return b.claimOnly(ctx, in.ID)
	}
	if b.opts.Seen != nil {
		b.opts.Seen(msg.FromUserName)
	}
	var m bridgeMedia
	if msg.MsgType == "image" || msg.MsgType == "voice" {
		if m, err = b.fetchMedia(ctx, ref, b.wecom.GetMedia, msg.MediaID); err != nil {
			return err
		}
	}
	cause := "in" + strconv.FormatInt(in.ID, 10)
	return b.inTx(ctx, cause, func(t *btx) error {
		if ok, err := t.ClaimInbound(in.ID); !ok || err != nil {
			return err
		}
		sm, err := t.StaffMember(msg.FromUserName)
		if rental.ErrorKind(err) == rental.KindNotFound || (err == nil && !sm.Active) {
			return t.notify([]string{msg.FromUserName}, "你还不是本店登记的店员（或已停用），消息没有转给顾客。请联系店主在后台添加。")
		}
		if err != nil {
			return err
		}
		sentAt := in.SentAt
		if sentAt.IsZero() {
			sentAt = t.now
		}
		reply := rental.ChatMessage{Direction: rental.ChatOut, Author: rental.StaffAuthor(sm.WeComUserID),
			Upstream: "wecom:" + in.DedupeKey, CreatedAt: sentAt, ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
		switch msg.MsgType {
		case "text":
			return t.command(sm, rental.ParseStaffCommand(msg.Content), reply)
		case "image", "voice":
			if m.failure != "" {
				return t.notify([]string{sm.WeComUserID}, "没能收到你发的"+map[string]string{"image": "图片", "voice": "语音"}[msg.MsgType]+"（"+m.failure+"），请重发。")
			}
			reply.Kind, reply.Media, reply.MediaType = rental.ChatKind(msg.MsgType), m.data, m.contentType
			if msg.MsgType == "voice" {
				reply.VoiceFormat = msg.Format
				if d, ok := rental.AMRDuration(m.data); ok {
					reply.Duration = d
				}
			}
			return t.staffReply(sm, 0, reply)
		}
		return t.notify([]string{sm.WeComUserID}, "暂不支持这种消息，请发文字、图片或语音。")
	})
}

// command carries out a staff member's text.
func (t *btx) command(sm store.StaffMember, cmd rental.StaffCommand, reply rental.ChatMessage) error {
	me := []string{sm.WeComUserID}
	switch cmd.Kind {
	case rental.CmdReply:
		reply.Kind, reply.Text = rental.ChatText, cmd.Text
		return t.staffReply(sm, cmd.Code, reply)
	case rental.CmdSwitch:
		conv, err := t.Conversation(cmd.Code)
		if rental.ErrorKind(err) == rental.KindNotFound {
			return t.notify(me, "没有会话 #"+rental.ConversationCode(cmd.Code)+"。发 /list 查看进行中的会话。")
		} else if err != nil {
			return err
		}
		if err := t.SetCurrent(sm.WeComUserID, conv.ID); err != nil {
			return err
		}
		text := "当前会话：" + rental.StaffTag(conv.ID, t.label(conv))
		if !conv.Live() {
			text += "（已结束；再发消息会为顾客开新会话）"
		}
		return t.notify(me, text)
	case rental.CmdList:
		return t.notify(me, t.list(sm))
	case rental.CmdTake:
		return t.take(sm, cmd.Code)
	case rental.CmdClose:
		return t.closeConversation(sm, cmd.Code)
	case rental.CmdOn:
		if err := t.SetOnDuty(sm.WeComUserID, true); err != nil {
			return err
		}
		sm.OnDuty = true
		given, err := t.fillFromQueue(sm)
		if err != nil {
			return err
		}
		text := "已上班，开始接收新会话。"
		if len(given) > 0 {
			text += "\n已为你分配排队中的会话：" + bridgeCodes(given)
		}
		return t.notify(me, text)
	case rental.CmdOff:
		if err := t.SetOnDuty(sm.WeComUserID, false); err != nil {
			return err
		}
		mine, err := t.Conversations(store.ConversationFilter{Live: true, Assignee: sm.WeComUserID, Limit: 100})
		if err != nil {
			return err
		}
		text := "已下班，新会话会分给在班的同事。"
		if len(mine) > 0 {
			text += fmt.Sprintf("\n你手上还有 %d 个会话；顾客再发消息时会转给在班的同事（没人在班则仍发给你）。", len(mine))
		}
		return t.notify(me, text)
	case rental.CmdVideo:
		return t.video(sm, cmd.Code)
	case rental.CmdNote:
		return t.note(sm, cmd.Text, reply)
	case rental.CmdHelp:
		return t.notify(me, rental.StaffHelp)
	case rental.CmdTransfer:
		return t.transfer(sm, cmd.Code, cmd.Text)
	case rental.CmdTag, rental.CmdUntag:
		return t.tagCommand(sm, cmd.Code, cmd.Text, cmd.Kind == rental.CmdTag)
	}
	return t.notify(me, cmd.Problem+"\n\n"+rental.StaffHelp)
}

// target finds the conversation a staff member means: code, or their
// current one.
func (t *btx) target(sm store.StaffMember, code rental.ConversationID) (*rental.Conversation, error) {
	me := []string{sm.WeComUserID}
	if code == 0 {
		code = sm.Current
	}
	if code == 0 {
		return nil, t.notify(me, "还没有当前会话。用「#A7 内容」回复指定会话，或发 /list 查看。")
	}
	conv, err := t.Conversation(code)
	if rental.ErrorKind(err) == rental.KindNotFound {
		return nil, t.notify(me, "没有会话 #"+rental.ConversationCode(code)+"。发 /list 查看进行中的会话。")
	}
	return conv, err
}

// staffReply appends a staff member's message to a conversation and sends
// it to the customer. Replying to a conversation nobody had assigns it to
// the replier. Replying to a resolved one goes to the customer's live
// conversation, opened for the occasion if there is none (resolved
// transcripts never grow).
func (t *btx) staffReply(sm store.StaffMember, code rental.ConversationID, reply rental.ChatMessage) error {
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	if !conv.Live() {
		was := conv.ID
		live, err := t.LiveConversation(conv.MemberID)
		if err != nil {
			return err
		}
		if live == nil {
			live = &rental.Conversation{MemberID: conv.MemberID, OpenID: conv.OpenID, State: rental.ConversationOpen, OpenedAt: t.now, PrevID: conv.ID,
				LastCustomerAt: conv.LastCustomerAt}
			if err := t.OpenConversation(live); err != nil {
				return err
			}
		}
		conv = live
		if err := t.notify([]string{sm.WeComUserID}, fmt.Sprintf("会话 #%s 已结束，消息已发到 %s。", rental.ConversationCode(was), rental.StaffTag(conv.ID, t.label(conv)))); err != nil {
			return err
		}
	}
	if conv.State == rental.ConversationOpen {
		if err := conv.Assign(sm.WeComUserID, t.now); err != nil {
			return err
		}
	}
	if err := t.Append(conv, &reply); err != nil {
		if errors.Is(err, store.ErrDuplicateMessage) {
			return nil
		}
		return err
	}
	conv.LastStaffAt = t.now
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	if err := t.SetCurrent(sm.WeComUserID, conv.ID); err != nil {
		return err
	}
	return t.flush(store.SideCustomer, conv.ID, reply.ID)
}

// take assigns a conversation to the staff member, delivers what they have
// not seen and shows the last few messages.
func (t *btx) take(sm store.StaffMember, code rental.ConversationID) error {
	me := []string{sm.WeComUserID}
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	if !conv.Live() {
		return t.notify(me, fmt.Sprintf("会话 #%s 已结束。直接回复它会为顾客开一个新会话。", conv.Code()))
	}
	before := conv.Assignee
	if err := conv.Assign(sm.WeComUserID, t.now); err != nil {
		return err
	}
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	if err := t.SetCurrent(sm.WeComUserID, conv.ID); err != nil {
		return err
	}
	if err := t.flush(store.SideStaff, conv.ID, 0); err != nil {
		return err
	}
	recent, err := t.Messages(conv.ID, 5)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "已接待 %s，现在直接发文字即可回复。", rental.StaffTag(conv.ID, t.label(conv)))
	if len(recent) > 0 {
		b.WriteString("\n最近消息：")
		for _, m := range recent {
			fmt.Fprintf(&b, "\n%s %s：%s", m.CreatedAt.In(bridgeZone).Format("01-02 15:04"), t.who(m), m.Preview(40))
		}
	}
	if err := t.notify(me, b.String()); err != nil {
		return err
	}
	if before != "" && before != sm.WeComUserID {
		return t.notify([]string{before}, fmt.Sprintf("%s 已由%s接手。", rental.StaffTag(conv.ID, t.label(conv)), bridgeStaffName(sm)))
	}
	return nil
}

func bridgeStaffName(sm store.StaffMember) string {
	if sm.Name != "" {
		return sm.Name
	}
	return sm.WeComUserID
}

// who names a message's author for staff.
func (t *btx) who(m rental.ChatMessage) string {
	switch {
	case m.Direction == rental.ChatNote:
		return "备注"
	case m.Direction == rental.ChatIn:
		return "顾客"
	case m.Author == rental.SystemAuthor:
		return "自动回复"
	}
	return strings.TrimPrefix(m.Author, "staff:")
}

// closeConversation resolves a conversation and asks the customer for a
// rating, then gives the staff member what waits in the queue.
func (t *btx) closeConversation(sm store.StaffMember, code rental.ConversationID) error {
	me := []string{sm.WeComUserID}
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	if !conv.Live() {
		return t.notify(me, fmt.Sprintf("会话 #%s 已经结束了。", conv.Code()))
	}
	if conv.Assignee == "" {
		conv.Assignee = sm.WeComUserID // whoever closes it answered it
	}
	if err := conv.Resolve(sm.WeComUserID, t.now); err != nil {
		return err
	}
	if err := t.system(conv, rental.TextAskRating); err != nil {
		return err
	}
	if err := t.SaveConversation(conv); err != nil {
		return err
	}
	if sm.Current == conv.ID {
		if err := t.SetCurrent(sm.WeComUserID, 0); err != nil {
			return err
		}
		sm.Current = 0
	}
	given, err := t.fillFromQueue(sm)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("已结束会话 %s，并请顾客打分。", rental.StaffTag(conv.ID, t.label(conv)))
	if len(given) > 0 {
		text += "\n已为你分配排队中的会话：" + bridgeCodes(given)
	}
	return t.notify(me, text)
}

// fillFromQueue gives an on-duty staff member queued conversations up to
// their capacity, oldest first.
func (t *btx) fillFromQueue(sm store.StaffMember) ([]rental.ConversationID, error) {
	if !sm.OnDuty {
		return nil, nil
	}
	loads, err := t.StaffLoads()
	if err != nil {
		return nil, err
	}
	open := 0
	for _, l := range loads {
		if l.UserID == sm.WeComUserID {
			open = l.Open
		}
	}
	if open >= t.b.opts.MaxOpen {
		return nil, nil
	}
	queued, err := t.QueuedConversations(t.b.opts.MaxOpen - open)
	if err != nil {
		return nil, err
	}
	var given []rental.ConversationID
	for i := range queued {
		conv := &queued[i]
		if err := conv.Assign(sm.WeComUserID, t.now); err != nil {
			return nil, err
		}
		if err := t.SaveConversation(conv); err != nil {
			return nil, err
		}
		if err := t.flush(store.SideStaff, conv.ID, 0); err != nil {
			return nil, err
		}
		given = append(given, conv.ID)
	}
	if len(given) > 0 {
		if err := t.makeCurrentIfIdle(sm.WeComUserID, given[0]); err != nil {
			return nil, err
		}
	}
	return given, nil
}

func bridgeCodes(ids []rental.ConversationID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = "#" + rental.ConversationCode(id)
	}
	return strings.Join(s, "、")
}

// note records an internal note in a conversation: staff only, never sent.
func (t *btx) note(sm store.StaffMember, text string, reply rental.ChatMessage) error {
	conv, err := t.target(sm, 0)
	if conv == nil || err != nil {
		return err
	}
	reply.Direction, reply.Kind, reply.Text, reply.ToCustomer = rental.ChatNote, rental.ChatText, text, rental.Delivery{}
	if err := t.Append(conv, &reply); err != nil {
		if errors.Is(err, store.ErrDuplicateMessage) {
			return nil
		}
		return err
	}
	return t.notify([]string{sm.WeComUserID}, fmt.Sprintf("已为 #%s 记下备注（顾客看不到）。", conv.Code()))
}

// video answers /video: with a room provider (BridgeOptions.Video), the
// customer gets the link in the chat and the staff member theirs;
// without, staff are told it is not available yet.
func (t *btx) video(sm store.StaffMember, code rental.ConversationID) error {
	me := []string{sm.WeComUserID}
	conv, err := t.target(sm, code)
	if conv == nil || err != nil {
		return err
	}
	if t.b.opts.Video == nil {
		return t.notify(me, "视频通话暂未开通。")
	}
	if !conv.Live() {
		return t.notify(me, fmt.Sprintf("会话 #%s 已结束，无法发起视频。", conv.Code()))
	}
	// The room is created inside the transaction's time budget: a local
	// call into media/, not a network one.
	customerURL, staffURL, err := t.b.opts.Video(context.Background(), *conv, sm.WeComUserID)
	if err != nil {
		return t.notify(me, "发起视频失败："+rental.ErrorMessage(err))
	}
	invite := rental.ChatMessage{Direction: rental.ChatOut, Kind: rental.ChatText, Author: rental.StaffAuthor(sm.WeComUserID),
		Text: "店员邀请您视频通话，点击进入：" + customerURL, CreatedAt: t.now, ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
	if err := t.Append(conv, &invite); err != nil {
		return err
	}
	if err := t.flush(store.SideCustomer, conv.ID, invite.ID); err != nil {
		return err
	}
	return t.notify(me, fmt.Sprintf("已邀请 %s 视频通话。你的入口：%s", rental.StaffTag(conv.ID, t.label(conv)), staffURL))
}

// list answers /list: the staff member's live conversations, the queue,
// and how many others have.
func (t *btx) list(sm store.StaffMember) string {
	all, err := t.Conversations(store.ConversationFilter{Live: true, Limit: 100})
	if err != nil {
		return "暂时无法读取会话列表，请稍后再试。"
	}
	var mine, queue []store.ConversationSummary
	others := 0
	for _, c := range all {
		switch c.Assignee {
		case sm.WeComUserID:
			mine = append(mine, c)
		case "":
			queue = append(queue, c)
		default:
			others++
		}
	}
	var b strings.Builder
	line := func(c store.ConversationSummary) {
		fmt.Fprintf(&b, "\n#%s %s", c.Code(), rental.CustomerLabel(c.Customer))
		if c.Last != nil {
			fmt.Fprintf(&b, " · %s · %s", c.Last.Preview(20), bridgeAgo(t.now.Sub(c.Last.CreatedAt)))
		}
		if c.Waiting > 0 {
			fmt.Fprintf(&b, " · %d 条未送达", c.Waiting)
		}
		if !c.WindowOpen(t.now) {
			b.WriteString(" · ⚠超过48小时")
		}
		if c.ID == sm.Current {
			b.WriteString(" ←当前")
		}
	}
	duty := "在班"
	if !sm.OnDuty {
		duty = "已下班"
	}
	fmt.Fprintf(&b, "你的会话（%d 个，%s）：", len(mine), duty)
	if len(mine) == 0 {
		b.WriteString("\n（无）")
	}
	for _, c := range mine {
		line(c)
	}
	if len(queue) > 0 {
		fmt.Fprintf(&b, "\n排队中（%d 个，/take 编号 接待）：", len(queue))
		for _, c := range queue {
			line(c)
		}
	}
	if others > 0 {
		fmt.Fprintf(&b, "\n同事处理中：%d 个", others)
	}
	return b.String()
}

// bridgeAgo says how long bridgeAgo, roughly, in Chinese.
func bridgeAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "刚刚"
	case d < time.Hour:
		return fmt.Sprintf("%d分钟前", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d小时前", int(d/time.Hour))
	}
	return fmt.Sprintf("%d天前", int(d/(24*time.Hour)))
}
