package rental

import (
	"context"
	"time"
)

// Channel names an outside system messages and notifications come from.
type Channel string

const (
	ChannelWeChat    Channel = "wechat"    // mini-program message push
	ChannelWeCom     Channel = "wecom"     // WeCom self-built app callback
	ChannelWeChatPay Channel = "wechatpay" // WeChat Pay notifications
)

// Inbound is one verified, decrypted callback. It is stored before WeChat is
// answered, unique by channel and dedupe key, so that a redelivery is
// answered the same way and stored once, and the work that follows
// (forwarding, replies) runs from the stored record.
type Inbound struct {
	ID        int64
	Channel   Channel
	DedupeKey string // MsgId, or sender+CreateTime+event for events, or the notification id
	Kind      string // message type ("text", "image", …) or "event:<name>"
	From      string // openid, WeCom userid, …
	To        string
	SentAt    time.Time // the upstream CreateTime
	Payload   []byte    // the decrypted payload as received; sealed at rest
	// ReceivedAt is set by the store.
	ReceivedAt  time.Time
	ProcessedAt *time.Time
}

// InboundStore keeps inbound callbacks.
type InboundStore interface {
	// SaveInbound stores in unless one with the same channel and dedupe key
	// exists; created says which. On return in.ID is the stored row's id.
	SaveInbound(ctx context.Context, in *Inbound) (created bool, err error)
}
