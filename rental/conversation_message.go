package rental

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// ChatMessageID identifies one message of a conversation.
type ChatMessageID int64

// ChatDirection says who a message is for.
type ChatDirection string

const (
	ChatIn   ChatDirection = "in"   // from the customer to the shop
	ChatOut  ChatDirection = "out"  // from the shop (a staff member or the gateway) to the customer
	ChatNote ChatDirection = "note" // an internal note: staff only, never sent
)

// ChatKind is what a message holds.
type ChatKind string

const (
	ChatText  ChatKind = "text"
	ChatImage ChatKind = "image" // Media is the picture
	ChatVoice ChatKind = "voice" // Media is the audio as delivered (AMR), VoiceFormat and Duration say more
	ChatPage  ChatKind = "page"  // a mini-program page card: Text is title and path, Media the thumbnail
)

// Valid reports whether k is a known kind.
func (k ChatKind) Valid() bool {
	switch k {
	case ChatText, ChatImage, ChatVoice, ChatPage:
		return true
	}
	return false
}

// Authors of messages: "customer:<member id>", "staff:<WeCom userid>",
// "system" for what the gateway writes itself (auto-replies, the rating
// question), "assistant" for the AI customer service's answers and
// hand-off messages.
const (
	SystemAuthor    = "system"
	AssistantAuthor = "assistant"
)

// CustomerAuthor names a customer as a message author.
func CustomerAuthor(id MemberID) string { return "customer:" + strconv.FormatInt(int64(id), 10) }

// StaffAuthor names a staff member as a message author.
func StaffAuthor(userID string) string { return "staff:" + userID }

// DeliveryStatus is how far a message got on one side (to the customer in
// WeChat, or to staff in WeCom).
type DeliveryStatus string

const (
	DeliveryNone   DeliveryStatus = ""       // this side does not receive the message
	DeliveryStored DeliveryStatus = "stored" // recorded, waiting for the outbox
	DeliverySent   DeliveryStatus = "sent"   // the upstream accepted it
	// DeliveryHeld: WeChat allows five replies per customer message (45047);
	// the message waits until the customer writes again.
	DeliveryHeld DeliveryStatus = "held"
	// DeliveryNotified: outside the 48-hour window (45015) the customer got
	// a subscribe message instead; the reply itself goes out when they
	// come back.
	DeliveryNotified DeliveryStatus = "notified"
	DeliveryFailed   DeliveryStatus = "failed" // given up; Reason says why
)

// Delivery is a message's status on one side.
type Delivery struct {
	Status    DeliveryStatus
	Reason    string // why it failed or waits, user-safe Chinese
	Recipient string // the openid or WeCom userid it went to
	Tries     int
	At        time.Time
}

// ChatMessage is one message of a conversation. Messages are evidence:
// body and media are sealed at rest, and each message is chained to the one
// before it in its conversation,
//
//	link = SHA-256(prev_link ‖ content_hash ‖ canonical metadata)
//
// so that editing, deleting or reordering a stored message shows. Delivery
// statuses change as the outbox works and are not part of the chain.
type ChatMessage struct {
	ID             ChatMessageID
	ConversationID ConversationID
	Seq            int // 1, 2, … within the conversation
	Direction      ChatDirection
	Kind           ChatKind
	Author         string
	// Upstream is the id of the callback the message came from
	// ("wechat:msg:123…", "wecom:msg:456…"), empty for messages the gateway
	// wrote; it keeps a reprocessed callback from appending twice.
	Upstream string
	Text     string

	Media       []byte
	MediaType   string // "image/png", "audio/amr", …
	MediaSize   int64
	MediaHash   string // hex SHA-256 of Media
	VoiceFormat string // voice: the format WeChat/WeCom named ("amr")
	Duration    time.Duration

	CreatedAt time.Time // kept to the microsecond, the precision both databases store

	ContentHash string
	PrevLink    string
	Link        string

	// Unreadable is set by a store whose sealed copy could not be opened:
	// the bytes at rest were altered.
	Unreadable bool
	// Shredded is set by a store when the content was destroyed by the
	// retention policy (its key shredded): Text and Media are empty, the
	// hashes and links remain and still chain.
	Shredded bool

	ToCustomer Delivery
	ToStaff    Delivery
}

// ConversationHead is where a conversation's chain ends.
type ConversationHead struct {
	Count int
	Link  string // conversationGenesis when Count is 0
}

// conversationGenesis is the PrevLink of a conversation's first message.
// The conversation id is in every message's metadata, so chains of
// different conversations cannot be swapped.
var conversationGenesis = hex.EncodeToString(make([]byte, sha256.Size))

// NewConversationHead is the head of an empty chain.
func NewConversationHead() ConversationHead {
	return ConversationHead{Link: conversationGenesis}
}

// MaxChatMedia bounds media kept with a message (WeChat images are at most
// 10 MB, WeCom files 20 MB).
const MaxChatMedia = 20 << 20

// MaxChatText bounds a message's text.
const MaxChatText = 16 << 10

// chatContentHash hashes the text and the media, each length-prefixed, so a
// message's content cannot be shifted between the two.
func chatContentHash(text string, media []byte) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(text)))])
	h.Write([]byte(text))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(media)))])
	h.Write(media)
	return hex.EncodeToString(h.Sum(nil))
}

func chatSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Chain validates m and links it after head: it sets Seq, MediaSize,
// MediaHash, ContentHash, PrevLink and Link, and returns the new head.
// Stores call it inside the transaction that holds the conversation row.
func (m *ChatMessage) Chain(head ConversationHead) (ConversationHead, error) {
	const op = "rental.ChatMessage.Chain"
	if head.Count == 0 {
		head.Link = conversationGenesis
	}
	switch {
	case m.ConversationID <= 0:
		return head, Errorf(op, KindInvalid, "消息必须属于一个会话 (message needs a conversation)")
	case !m.Kind.Valid():
		return head, Errorf(op, KindInvalid, "未知的消息类型 (unknown message kind) %q", m.Kind)
	case m.Direction != ChatIn && m.Direction != ChatOut && m.Direction != ChatNote:
		return head, Errorf(op, KindInvalid, "未知的消息方向 (unknown direction) %q", m.Direction)
	case m.Author == "":
		return head, Errorf(op, KindInvalid, "消息需要作者 (message needs an author)")
	case m.Text == "" && len(m.Media) == 0:
		return head, Errorf(op, KindInvalid, "消息内容为空 (empty message)")
	case len(m.Text) > MaxChatText || !utf8.ValidString(m.Text):
		return head, Errorf(op, KindInvalid, "消息文字太长或不是 UTF-8 (text too long or not UTF-8)")
	case len(m.Media) > MaxChatMedia:
		return head, Errorf(op, KindInvalid, "文件太大，最大 %d MB (media too large)", MaxChatMedia>>20)
	case m.CreatedAt.IsZero():
		return head, Errorf(op, KindInternal, "message without a time")
	}
	m.CreatedAt = m.CreatedAt.UTC().Truncate(time.Microsecond)
	m.MediaSize = int64(len(m.Media))
	m.MediaHash = ""
	if len(m.Media) > 0 {
		m.MediaHash = chatSHA256(m.Media)
	}
	m.ContentHash = chatContentHash(m.Text, m.Media)
	m.Seq = head.Count + 1
	m.PrevLink = head.Link
	m.Link = m.computeLink(head.Link)
	return ConversationHead{Count: m.Seq, Link: m.Link}, nil
}

func (m *ChatMessage) computeLink(prev string) string {
	return chainLink(prev, m.ContentHash, m.canonicalMetadata())
}

// canonicalMetadata encodes every chained field but the content as
// length-prefixed strings under a version tag: no separator inside a value
// can make two different messages encode alike.
func (m *ChatMessage) canonicalMetadata() []byte {
	fields := []string{
		"tacklegate-chat-v1",
		strconv.FormatInt(int64(m.ConversationID), 10),
		strconv.Itoa(m.Seq),
		string(m.Direction),
		string(m.Kind),
		m.Author,
		m.Upstream,
		m.MediaType,
		strconv.FormatInt(m.MediaSize, 10),
		m.MediaHash,
		m.VoiceFormat,
		strconv.FormatInt(m.Duration.Milliseconds(), 10),
		strconv.FormatInt(m.CreatedAt.UnixMicro(), 10),
	}
	return lengthPrefixed(fields...)
}

// TranscriptBreakReason says how a conversation's chain is broken.
type TranscriptBreakReason string

const (
	TranscriptUnreadable TranscriptBreakReason = "unreadable"      // sealed text or media altered at rest
	TranscriptContent    TranscriptBreakReason = "content_changed" // text or media does not match its hash
	TranscriptRecord     TranscriptBreakReason = "record_changed"  // metadata or a hash edited
	TranscriptMissing    TranscriptBreakReason = "missing"         // a message was deleted
	TranscriptReordered  TranscriptBreakReason = "reordered"       // messages moved or repeated
	TranscriptForeign    TranscriptBreakReason = "foreign"         // a message of another conversation
	TranscriptHead       TranscriptBreakReason = "head_mismatch"   // the chain does not end where the conversation says
)

var transcriptBreakLabels = map[TranscriptBreakReason]string{
	TranscriptUnreadable: "加密内容被改动", TranscriptContent: "内容被修改", TranscriptRecord: "记录被修改",
	TranscriptMissing: "有消息被删除", TranscriptReordered: "顺序被调换", TranscriptForeign: "混入了其他会话的消息",
	TranscriptHead: "链尾与会话记录不符",
}

// TranscriptBreak is the first place a conversation's chain fails.
type TranscriptBreak struct {
	Index  int // position in the messages given; len(msgs) when messages are missing at the end
	Seq    int // the message's stored sequence number; 0 past the end
	ID     ChatMessageID
	Reason TranscriptBreakReason
}

// Message is a user-safe description, Chinese first.
func (b *TranscriptBreak) Message() string {
	return fmt.Sprintf("聊天记录在第 %d 条处断开：%s (transcript chain broken at message %d: %s)",
		b.Index+1, transcriptBreakLabels[b.Reason], b.Index+1, b.Reason)
}

func (b *TranscriptBreak) Error() string { return b.Message() }

// VerifyChain checks the conversation's messages, in stored order, against
// each other and against the conversation's head, and returns the first
// break, or nil when every link holds.
func (c *Conversation) VerifyChain(msgs []ChatMessage) *TranscriptBreak {
	prev := conversationGenesis
	for i := range msgs {
		m := &msgs[i]
		brk := func(r TranscriptBreakReason) *TranscriptBreak {
			return &TranscriptBreak{Index: i, Seq: m.Seq, ID: m.ID, Reason: r}
		}
		switch {
		case m.ConversationID != c.ID:
			return brk(TranscriptForeign)
		case m.Unreadable:
			return brk(TranscriptUnreadable)
		case !m.Shredded && (chatContentHash(m.Text, m.Media) != m.ContentHash ||
			int64(len(m.Media)) != m.MediaSize || (len(m.Media) > 0 && chatSHA256(m.Media) != m.MediaHash)):
			return brk(TranscriptContent)
		case m.Seq > i+1:
			for _, later := range msgs[i+1:] {
				if later.Seq == i+1 {
					return brk(TranscriptReordered)
				}
			}
			return brk(TranscriptMissing)
		case m.Seq < i+1:
			return brk(TranscriptReordered)
		}
		if m.computeLink(prev) != m.Link {
			if m.PrevLink != prev {
				return brk(TranscriptReordered) // chained after some other message
			}
			return brk(TranscriptRecord)
		}
		if m.PrevLink != prev {
			return brk(TranscriptRecord) // the stored prev_link alone was edited
		}
		prev = m.Link
	}
	switch {
	case len(msgs) < c.Head.Count:
		return &TranscriptBreak{Index: len(msgs), Reason: TranscriptMissing}
	case len(msgs) > c.Head.Count || (c.Head.Count > 0 && prev != c.Head.Link):
		i := len(msgs) - 1
		return &TranscriptBreak{Index: i, Seq: msgs[i].Seq, ID: msgs[i].ID, Reason: TranscriptHead}
	}
	return nil
}

// Preview is a one-line summary of a message for lists and notices.
func (m *ChatMessage) Preview(max int) string {
	if m.Shredded {
		return "[内容已按保留期限销毁]"
	}
	switch m.Kind {
	case ChatImage:
		return "[图片]"
	case ChatVoice:
		if s := int(m.Duration.Round(time.Second) / time.Second); s > 0 {
			return fmt.Sprintf("[语音 %d秒]", s)
		}
		return "[语音]"
	case ChatPage:
		return "[小程序卡片] " + chatTruncate(m.Text, max)
	}
	return chatTruncate(m.Text, max)
}

// chatTruncate cuts s to at most n characters, marking the cut with "…".
func chatTruncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
