package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The outbox handlers of the bridge. Each records what it delivered per
// message (or, for notices, per outbox key) as soon as the upstream
// accepted it, with a context a shutdown does not cancel, and skips what is
// recorded: a redelivered outbox row sends nothing twice.

// bridgeFlushBatch is how many messages one flush sends before handing over to a
// follow-up row, so a long backlog does not outlive the outbox lease.
const bridgeFlushBatch = 10

// bridgeFlushLease is how long a flush holds a conversation's side.
const bridgeFlushLease = 2 * time.Minute

// errBridgeBusy: another worker is flushing this conversation; the outbox retries.
var errBridgeBusy = errors.New("bridge: the conversation is being delivered by another worker")

// Handlers returns the outbox handlers of the bridge's kinds.
func (b *Bridge) Handlers() map[string]store.Deliver {
	return map[string]store.Deliver{
		KindBridgeToStaff:    b.deliverToStaff,
		KindBridgeToCustomer: b.deliverToCustomer,
		KindBridgeSubscribe:  b.deliverSubscribe,
		KindBridgeNotice:     b.deliverNotice,
	}
}

// call bounds one upstream call by CallTimeout but not by ctx's
// cancellation: a shutdown lets the call finish so that its outcome is
// recorded.
func (b *Bridge) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), b.opts.CallTimeout)
}

// lease takes a conversation's side for one flush.
func (b *Bridge) lease(ctx context.Context, conv rental.ConversationID, side string) (release func(), err error) {
	// Taken even while a shutdown cancels ctx: a cancellation racing the
	// UPDATE could leave the lease taken in the database with an error
	// here, and so never released — the conversation stuck until the
	// lease expires (seen on PostgreSQL when the worker stops mid-backlog).
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ok, err := b.db.LeaseConversation(lctx, conv, side, time.Now().Add(bridgeFlushLease))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errBridgeBusy
	}
	return func() {
		if err := b.db.ReleaseConversation(context.WithoutCancel(ctx), conv, side); err != nil {
			b.log.Warn("bridge: cannot release a delivery lease (it expires by itself)", "conversation", conv, "error", err)
		}
	}, nil
}

// delivered records one message's outcome on one side, even when ctx was
// cancelled meanwhile.
func (b *Bridge) delivered(ctx context.Context, conv rental.ConversationID, msg rental.ChatMessageID, side string, d rental.Delivery) error {
	if err := b.db.SetDelivery(context.WithoutCancel(ctx), msg, side, d); err != nil {
		return err
	}
	if b.opts.Changed != nil {
		b.opts.Changed([]rental.ConversationID{conv})
	}
	return nil
}

// record stores delivery outcomes even when ctx was cancelled meanwhile.
func (b *Bridge) record(ctx context.Context, fn func(t *btx) error, cause string) error {
	return b.inTx(context.WithoutCancel(ctx), cause, fn)
}

// deliverToStaff sends a conversation's undelivered customer messages to
// its assigned staff member, in order. Without an assignee they wait (the
// staff member who takes the conversation gets them).
func (b *Bridge) deliverToStaff(ctx context.Context, item store.OutboxItem) error {
	var p bridgeFlush
	if err := json.Unmarshal(item.Payload, &p); err != nil {
		return &store.Permanent{Err: err}
	}
	release, err := b.lease(ctx, p.Conversation, store.SideStaff)
	if err != nil {
		return err
	}
	defer release()
	conv, err := b.db.Conversation(ctx, p.Conversation)
	if err != nil {
		return err
	}
	if conv.Assignee == "" {
		return nil
	}
	member, err := b.db.Member(ctx, conv.MemberID)
	if err != nil {
		return err
	}
	tag := rental.StaffTag(conv.ID, rental.CustomerLabel(member))
	for {
		msgs, err := b.db.WaitingMessages(ctx, conv.ID, store.SideStaff, bridgeFlushBatch)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := ctx.Err(); err != nil {
				return err
			}
			serr := b.sendToStaff(ctx, conv.Assignee, tag, m)
			if serr != nil && bridgeRetryable(serr) {
				return serr
			}
			d := rental.Delivery{Status: rental.DeliverySent, Recipient: conv.Assignee}
			if serr != nil {
				d = rental.Delivery{Status: rental.DeliveryFailed, Reason: bridgeReason(serr), Recipient: conv.Assignee}
				b.log.Warn("bridge: a customer message could not reach staff", "conversation", conv.ID, "seq", m.Seq, "error", serr)
			}
			if err := b.delivered(ctx, conv.ID, m.ID, store.SideStaff, d); err != nil {
				return err
			}
		}
		if len(msgs) < bridgeFlushBatch {
			return nil
		}
	}
}

// sendToStaff forwards one customer message to WeCom: text as
// "[#A7 张伟] …"; images and voice as media after a line saying whose they
// are (WeCom media messages carry no caption). Media is uploaded first, so
// that a failed upload shows nothing to staff.
func (b *Bridge) sendToStaff(ctx context.Context, to, tag string, m rental.ChatMessage) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	touser := []string{to}
	var mediaType, intro string
	switch {
	case m.Kind == rental.ChatImage && len(m.Media) > 0:
		mediaType, intro = "image", "发来一张图片："
	case m.Kind == rental.ChatVoice && len(m.Media) > 0 && !strings.Contains(m.MediaType, "amr"):
		// A voice note recorded in the app (WebM/Ogg/MP4): WeCom plays only
		// AMR, so staff listen in the console.
		text := "发来一段语音"
		if s := int(m.Duration.Round(time.Second) / time.Second); s > 0 {
			text += fmt.Sprintf("（%d秒）", s)
		}
		_, err := b.wecom.SendText(cctx, touser, tag+" "+text+"，请在客服后台收听")
		return err
	case m.Kind == rental.ChatVoice && len(m.Media) > 0:
		mediaType, intro = "voice", "发来一段语音"
		if s := int(m.Duration.Round(time.Second) / time.Second); s > 0 {
			intro += fmt.Sprintf("（%d秒）", s)
		}
		intro += "："
	default:
		text := m.Text
		if m.Kind == rental.ChatPage {
			text = "[小程序卡片] " + strings.ReplaceAll(text, "\n", " ")
		}
		_, err := b.wecom.SendText(cctx, touser, bridgeFitWeCom(tag+" "+text))
		return err
	}
	mediaID, err := b.wecom.UploadMedia(cctx, mediaType, bridgeMediaName(mediaType, m.MediaType), bytes.NewReader(m.Media))
	if err != nil && !bridgeRetryable(err) {
		// WeCom refuses the file as such (a GIF, an oversized voice): staff
		// still learn that something came, and see it in the console.
		_, err = b.wecom.SendText(cctx, touser, tag+" "+strings.TrimSuffix(intro, "：")+"（企业微信无法显示这个文件，请在客服后台查看）")
		return err
	}
	if err != nil {
		return err
	}
	if _, err := b.wecom.SendText(cctx, touser, tag+" "+intro); err != nil {
		return err
	}
	if mediaType == "image" {
		_, err = b.wecom.SendImage(cctx, touser, mediaID)
	} else {
		_, err = b.wecom.SendVoice(cctx, touser, mediaID)
	}
	return err
}

func bridgeMediaName(kind, contentType string) string {
	switch {
	case kind == "voice":
		return "voice.amr"
	case strings.Contains(contentType, "png"):
		return "image.png"
	case strings.Contains(contentType, "gif"):
		return "image.gif"
	}
	return "image.jpg"
}

// bridgeFitWeCom cuts a text to WeCom's 2048-byte limit on a character boundary.
func bridgeFitWeCom(s string) string {
	const max = 2000
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// deliverToCustomer sends a conversation's waiting replies to the customer,
// in order, and applies WeChat's rules: outside the 48-hour window (45015)
// the replies are not retried but announced by a subscribe message; past
// five replies per customer message (45047) they wait for the customer to
// write again.
func (b *Bridge) deliverToCustomer(ctx context.Context, item store.OutboxItem) error {
	var p bridgeFlush
	if err := json.Unmarshal(item.Payload, &p); err != nil {
		return &store.Permanent{Err: err}
	}
	release, err := b.lease(ctx, p.Conversation, store.SideCustomer)
	if err != nil {
		return err
	}
	defer release()
	conv, err := b.db.Conversation(ctx, p.Conversation)
	if err != nil {
		return err
	}
	for {
		msgs, err := b.db.WaitingMessages(ctx, conv.ID, store.SideCustomer, bridgeFlushBatch)
		if err != nil {
			return err
		}
		if conv.CustomerChannel == rental.CustomerViaApp && (conv.OpenID == "" || b.opts.CustomerInApp == nil || b.opts.CustomerInApp(conv.MemberID)) {
			// The customer chats in the app: the reply is theirs to read
			// there (pushed over /ws), not a WeChat message.
			for _, m := range msgs {
				if err := b.delivered(ctx, conv.ID, m.ID, store.SideCustomer,
					rental.Delivery{Status: rental.DeliverySent, Reason: chatAppDelivered, Recipient: chatAppRecipient}); err != nil {
					return err
				}
			}
			if len(msgs) < bridgeFlushBatch {
				return nil
			}
			continue
		}
		for i, m := range msgs {
			if err := ctx.Err(); err != nil {
				return err
			}
			note, serr := b.sendToCustomer(ctx, conv.OpenID, m)
			e, isAPI := bridgeAPIError(serr)
			switch {
			case serr == nil:
				if err := b.delivered(ctx, conv.ID, m.ID, store.SideCustomer,
					rental.Delivery{Status: rental.DeliverySent, Reason: note, Recipient: conv.OpenID}); err != nil {
					return err
				}
			case isAPI && e.IsWindowClosed():
				return b.windowClosed(ctx, conv, msgs[i].ID)
			case isAPI && e.Code == 45047:
				return b.holdReplies(ctx, conv, msgs[i].ID)
			case bridgeRetryable(serr):
				return serr
			default:
				b.log.Warn("bridge: a reply could not reach the customer", "conversation", conv.ID, "seq", m.Seq, "error", serr)
				if err := b.record(ctx, func(t *btx) error {
					if err := t.SetDelivery(m.ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryFailed, Reason: bridgeReason(serr), Recipient: conv.OpenID}, conv.ID); err != nil {
						return err
					}
					return t.notify(bridgeStaffOf(conv, m), fmt.Sprintf("%s 消息未送达：%s\n「%s」", rental.StaffTag(conv.ID, t.label(&conv)), bridgeReason(serr), m.Preview(30)))
				}, fmt.Sprintf("failed%d", m.ID)); err != nil {
					return err
				}
			}
		}
		if len(msgs) < bridgeFlushBatch {
			return nil
		}
	}
}

// bridgeStaffOf is who hears about a message's fate: its author if staff, else
// the conversation's staff member.
func bridgeStaffOf(conv rental.Conversation, m rental.ChatMessage) []string {
	if u, ok := strings.CutPrefix(m.Author, "staff:"); ok {
		return []string{u}
	}
	if conv.Assignee != "" {
		return []string{conv.Assignee}
	}
	return nil
}

// sendToCustomer sends one reply; note says how, when not as written.
// Mini-program customer service has no voice message type (text, image,
// link, mini-program page): a staff voice note is kept in the conversation
// and the customer gets a text saying one was left.
func (b *Bridge) sendToCustomer(ctx context.Context, openID string, m rental.ChatMessage) (note string, err error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	switch {
	case m.Kind == rental.ChatImage && len(m.Media) > 0:
		mediaID, err := b.wechat.UploadImage(cctx, bridgeMediaName("image", m.MediaType), bytes.NewReader(m.Media))
		if err != nil {
			return "", err
		}
		return "", b.wechat.SendCustomerImage(cctx, openID, mediaID)
	case m.Kind == rental.ChatVoice:
		name := ""
		if u, ok := strings.CutPrefix(m.Author, "staff:"); ok {
			if st, err := b.db.StaffByUserID(cctx, u); err == nil {
				name = st.Name
			}
		}
		text := rental.VoiceNoteText(name, int(m.Duration.Round(time.Second)/time.Second))
		return "微信客服消息不支持语音，已用文字告知顾客", b.wechat.SendCustomerText(cctx, openID, text)
	}
	return "", b.wechat.SendCustomerText(cctx, openID, m.Text)
}

// windowClosed handles 45015 for the conversation's waiting replies from
// `from` on: they are not retried. With a subscribe template, a subscribe
// message tells the customer a reply waits (KindBridgeSubscribe decides
// notified or failed); without, they fail now. Staff are told either way.
// Replies the gateway wrote itself (the rating question, auto-replies) just
// fail: a subscribe notice for them would mislead.
func (b *Bridge) windowClosed(ctx context.Context, conv rental.Conversation, from rental.ChatMessageID) error {
	return b.record(ctx, func(t *btx) error {
		waiting, err := t.Waiting(conv.ID, store.SideCustomer, 1000)
		if err != nil {
			return err
		}
		var staffReplies []rental.ChatMessageID
		for _, m := range waiting {
			if m.ID < from {
				continue
			}
			why := "顾客已超过48小时未互动，微信不允许再发客服消息"
			if m.Author != rental.SystemAuthor && b.notice != nil {
				staffReplies = append(staffReplies, m.ID)
				why += "；正在发送订阅消息提醒"
			}
			if err := t.SetDelivery(m.ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryFailed, Reason: why, Recipient: conv.OpenID}, conv.ID); err != nil {
				return err
			}
		}
		if len(staffReplies) > 0 {
			p, _ := json.Marshal(bridgeSubscribe{Conversation: conv.ID, Messages: staffReplies})
			return t.Enqueue(KindBridgeSubscribe, fmt.Sprintf("%s:%d", KindBridgeSubscribe, staffReplies[0]), p)
		}
		var to []string
		for _, m := range waiting {
			if m.ID >= from && m.Author != rental.SystemAuthor {
				to = bridgeAppendUnique(to, bridgeStaffOf(conv, m)...)
			}
		}
		return t.notify(to, fmt.Sprintf("%s 顾客已超过48小时未互动，消息未送达（未配置订阅消息提醒）。请等顾客再次联系，或电话联系。", rental.StaffTag(conv.ID, t.label(&conv))))
	}, fmt.Sprintf("window%d", from))
}

// holdReplies handles 45047: WeChat allows five replies per customer
// message, so the conversation's waiting replies from `from` on wait until
// the customer writes again (released by the processor), and staff are
// told once.
func (b *Bridge) holdReplies(ctx context.Context, conv rental.Conversation, from rental.ChatMessageID) error {
	return b.record(ctx, func(t *btx) error {
		waiting, err := t.Waiting(conv.ID, store.SideCustomer, 1000)
		if err != nil {
			return err
		}
		var to []string
		for _, m := range waiting {
			if m.ID < from {
				continue
			}
			if err := t.SetDelivery(m.ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryHeld,
				Reason: "已达微信客服回复上限（每条顾客消息最多回复5条），顾客再发消息时自动补发", Recipient: conv.OpenID}, conv.ID); err != nil {
				return err
			}
			to = bridgeAppendUnique(to, bridgeStaffOf(conv, m)...)
		}
		return t.notify(to, fmt.Sprintf("%s 已达微信客服回复上限（顾客每发一条消息，最多回复5条）。其余消息已排队，顾客再发消息时自动补发。", rental.StaffTag(conv.ID, t.label(&conv))))
	}, fmt.Sprintf("held%d", from))
}

func bridgeAppendUnique(list []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, l := range list {
			found = found || l == a
		}
		if !found {
			list = append(list, a)
		}
	}
	return list
}

// deliverSubscribe sends the 48-hour fallback: one subscribe message for a
// batch of replies. Sent: the replies are "notified" and go out when the
// customer comes back. Refused (no consent left, 43101, or any other
// refusal): they stay failed. Staff are told which.
func (b *Bridge) deliverSubscribe(ctx context.Context, item store.OutboxItem) error {
	var p bridgeSubscribe
	if err := json.Unmarshal(item.Payload, &p); err != nil {
		return &store.Permanent{Err: err}
	}
	if sent, err := b.db.WasSent(ctx, item.Key); err != nil || sent {
		return err
	}
	conv, err := b.db.Conversation(ctx, p.Conversation)
	if err != nil {
		return err
	}
	_, msgs, err := b.db.Transcript(ctx, conv.ID, false)
	if err != nil {
		return err
	}
	wanted := map[rental.ChatMessageID]bool{}
	for _, id := range p.Messages {
		wanted[id] = true
	}
	var batch []rental.ChatMessage
	for _, m := range msgs {
		if wanted[m.ID] {
			batch = append(batch, m)
		}
	}
	if len(batch) == 0 || b.notice == nil {
		return nil
	}
	member, err := b.db.Member(ctx, conv.MemberID)
	if err != nil {
		return err
	}
	first := batch[0]
	facts := NoticeFacts{Code: conv.Code(), Customer: rental.CustomerLabel(member), Excerpt: first.Preview(20), At: b.now()}
	if u, ok := strings.CutPrefix(first.Author, "staff:"); ok {
		if st, err := b.db.StaffByUserID(ctx, u); err == nil {
			facts.Staff = st.Name
		}
	}
	cctx, cancel := b.call(ctx)
	_, serr := b.wechat.SendSubscribe(cctx, conv.OpenID, b.notice.TemplateID, b.notice.Page, b.notice.Data(facts))
	cancel()
	if serr != nil && bridgeRetryable(serr) {
		return serr
	}
	return b.record(ctx, func(t *btx) error {
		var to []string
		for _, m := range batch {
			to = bridgeAppendUnique(to, bridgeStaffOf(conv, m)...)
		}
		tag := rental.StaffTag(conv.ID, facts.Customer)
		if serr != nil {
			for _, m := range batch {
				if err := t.SetDelivery(m.ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryFailed,
					Reason: "顾客已超过48小时未互动，且没有可用的订阅消息授权（" + bridgeReason(serr) + "）", Recipient: conv.OpenID}, conv.ID); err != nil {
					return err
				}
			}
			return t.notify(to, tag+" 顾客已超过48小时未互动，消息未送达（顾客没有订阅提醒）。请等顾客再次联系，或电话联系。")
		}
		if err := t.MarkSent(item.Key); err != nil {
			return err
		}
		for _, m := range batch {
			if err := t.SetDelivery(m.ID, store.SideCustomer, rental.Delivery{Status: rental.DeliveryNotified,
				Reason: "顾客已超过48小时未互动，已发订阅消息提醒；顾客回来后自动补发", Recipient: conv.OpenID}, conv.ID); err != nil {
				return err
			}
		}
		return t.notify(to, tag+" 顾客已超过48小时未互动，消息未送达。已通过订阅消息提醒顾客，顾客回来后会自动补发。")
	}, "subscribe"+strings.TrimPrefix(item.Key, KindBridgeSubscribe+":"))
}

// deliverNotice sends a text to staff once.
func (b *Bridge) deliverNotice(ctx context.Context, item store.OutboxItem) error {
	var p bridgeNotice
	if err := json.Unmarshal(item.Payload, &p); err != nil {
		return &store.Permanent{Err: err}
	}
	if sent, err := b.db.WasSent(ctx, item.Key); err != nil || sent {
		return err
	}
	cctx, cancel := b.call(ctx)
	_, err := b.wecom.SendText(cctx, p.To, bridgeFitWeCom(p.Text))
	cancel()
	if err != nil {
		if bridgeRetryable(err) {
			return err
		}
		return &store.Permanent{Err: err}
	}
	return b.db.InBridgeTx(context.WithoutCancel(ctx), func(tx *store.BridgeTx) error { return tx.MarkSent(item.Key) })
}
