package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// photoFromChat: POST /api/v1/staff/orders/:id/photos/from-chat
// {conversation_id, seq, caption} takes a photo the customer sent in chat
// (a scratch on the rod, shown before pickup) into the order's evidence,
// like an uploaded inspection photo; its id then goes into the pickup or
// return inspection.
//
// The photo must be one the order's own customer sent, and the
// conversation's hash chain must verify up to that message: evidence is
// only copied from evidence. The bytes are opened from the chat's sealed
// copy and sealed again under the order's evidence (a sealed value is
// bound to its place, so moving it as it is would not open), and Ref
// records where they came from — the conversation, the message's seq, its
// media SHA-256 and its chain link — so the order's chain vouches for the
// source as well as the bytes.
func (h *rentalHandlers) photoFromChat(c *fiber.Ctx) error {
	const op = "staff.photoFromChat"
	ctx := c.UserContext()
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	var in struct {
		ConversationID string `json:"conversation_id"` // "A7" or "7"
		Seq            int    `json:"seq"`
		Caption        string `json:"caption"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	convID, ok := rental.ParseConversationCode(in.ConversationID)
	if !ok || in.Seq <= 0 {
		return rental.Errorf(op, rental.KindInvalid, "请给出会话号和消息序号 (conversation_id and seq are required)")
	}
	caption := strings.TrimSpace(in.Caption)
	if utf8.RuneCountInString(caption) > 100 {
		return rental.Errorf(op, rental.KindInvalid, "说明最多 100 字 (caption too long)")
	}
	o, err := h.r.DB.Order(ctx, id)
	if err != nil {
		return err
	}
	switch o.State {
	case rental.StatePaid, rental.StatePickedUp, rental.StateReturned, rental.StateSettled:
	default:
		return rental.Errorf(op, rental.KindConflict, "订单状态为 %s，不能添加验货照片 (order is %s; photos are for paid orders)", o.State, o.State)
	}
	conv, msgs, err := h.r.DB.Transcript(ctx, convID, true)
	if err != nil {
		return err
	}
	if conv.MemberID != o.MemberID {
		return rental.Errorf(op, rental.KindConflict, "会话 %s 不是该订单顾客的会话 (the conversation is not with this order's customer)", conv.Code())
	}
	idx := -1
	for i := range msgs {
		if msgs[i].Seq == in.Seq {
			idx = i
			break
		}
	}
	if idx < 0 {
		return rental.Errorf(op, rental.KindNotFound, "会话 %s 没有第 %d 条消息 (no such message)", conv.Code(), in.Seq)
	}
	m := msgs[idx]
	if m.Direction != rental.ChatIn || m.Kind != rental.ChatImage || len(m.Media) == 0 {
		return rental.Errorf(op, rental.KindInvalid, "第 %d 条消息不是顾客发来的图片 (message %d is not a photo from the customer)", in.Seq, in.Seq)
	}
	if brk := conv.VerifyChain(msgs); brk != nil && brk.Index <= idx {
		return rental.Errorf(op, rental.KindConflict, "会话记录在第 %d 条消息处校验失败，不能作为证据 (the transcript's chain breaks at message %d: %s)",
			brk.Seq, brk.Seq, brk.Reason)
	}
	mt := http.DetectContentType(m.Media)
	if _, ok := photoTypes[mt]; !ok {
		return rental.Errorf(op, rental.KindInvalid, "这张图片不是 JPEG/PNG/GIF/WebP (the image is %s)", mt)
	}
	name := fmt.Sprintf("聊天图片 %s 第 %d 条", conv.Code(), m.Seq)
	if caption != "" {
		name = caption + " · " + name
	}
	e := rental.Evidence{OrderID: o.ID, Kind: rental.EvidencePhoto, MediaType: mt, Name: name,
		Ref:   fmt.Sprintf("chat:%s/%d media_sha256:%s link:%s", conv.Code(), m.Seq, m.MediaHash, m.Link),
		Actor: actor(caller(c)), CreatedAt: h.r.now(), Content: m.Media}
	if err := h.r.DB.AppendEvidence(ctx, &e); err != nil {
		return err
	}
	Logger(c).Info("inspection photo taken from chat", "order", o.ID, "conversation", conv.Code(), "seq", m.Seq, "evidence", e.ID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"photos": []fiber.Map{{
		"id": e.ID, "seq": e.Seq, "name": e.Name, "media_type": e.MediaType, "size": e.Size, "sha256": e.ContentHash, "ref": e.Ref,
	}}})
}
