package rental

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// EvidenceID identifies one evidence item.
type EvidenceID int64

// EvidenceKind says what an evidence item is.
type EvidenceKind string

const (
	EvidencePhoto        EvidenceKind = "photo"        // an inspection photo, uploaded or taken from chat
	EvidenceNote         EvidenceKind = "note"         // text written by staff or the customer
	EvidenceChatMessage  EvidenceKind = "chat_message" // a chat message; Ref names it
	EvidenceRecording    EvidenceKind = "recording"    // a call recording, usually External
	EvidenceInspection   EvidenceKind = "inspection"   // an inspection record (JSON), written by the store
	EvidenceConfirmation EvidenceKind = "confirmation" // a customer's confirmation of an inspection (JSON)
)

// Valid reports whether k is a known kind.
func (k EvidenceKind) Valid() bool {
	switch k {
	case EvidencePhoto, EvidenceNote, EvidenceChatMessage, EvidenceRecording, EvidenceInspection, EvidenceConfirmation:
		return true
	}
	return false
}

// MaxEvidenceSize bounds content kept in the database. Larger files (call
// recordings) are kept outside and chained as External items by hash.
const MaxEvidenceSize = 32 << 20

// Evidence is one item of an order's evidence chain. Its link is
//
//	SHA-256(prev_link ‖ content_hash ‖ canonical metadata)
//
// so editing the content, the metadata, or deleting or reordering items
// breaks the chain at the first item touched. The chain head (count and last
// link) is kept beside the chain, so that dropping items at the end shows
// too.
type Evidence struct {
	ID        EvidenceID
	OrderID   OrderID
	Seq       int // 1, 2, … within the order
	Kind      EvidenceKind
	MediaType string // "image/jpeg", "text/plain; charset=utf-8", …
	Name      string // a file name or caption
	Ref       string // where it came from: "inbound:123", "message:wx-msgid", "room:abc/track1"
	Actor     Actor
	CreatedAt time.Time // kept to the microsecond, the precision both databases store

	// Content is the file or text, sealed at rest. An External item's
	// content lives elsewhere (a recording on disk) and is nil here; its
	// hash and size still go into the chain.
	Content  []byte
	External bool
	Size     int64

	ContentHash string // hex SHA-256 of the content
	PrevLink    string // hex; the previous item's Link, or GenesisLink for the first
	Link        string // hex

	// Unreadable is set by a store whose sealed copy of the content could
	// not be opened: the bytes at rest were altered.
	Unreadable bool
}

// ChainHead is where an order's chain ends.
type ChainHead struct {
	Count int
	Link  string // GenesisLink when Count is 0
}

// GenesisLink is the PrevLink of an order's first item. The order id is in
// every item's metadata, so chains of different orders cannot be swapped.
var GenesisLink = hex.EncodeToString(make([]byte, sha256.Size))

// ContentHash returns the hex SHA-256 of content.
func ContentHash(content []byte) string {
	h := sha256.Sum256(content)
	return hex.EncodeToString(h[:])
}

// Chain validates e and links it after head: it sets Seq, Size,
// ContentHash (unless External), PrevLink and Link, and returns the new head.
// Stores call it inside the transaction that holds the order's head.
func (e *Evidence) Chain(head ChainHead) (ChainHead, error) {
	const op = "rental.Evidence.Chain"
	if head.Count == 0 {
		head.Link = GenesisLink
	}
	switch {
	case e.OrderID <= 0:
		return head, Errorf(op, KindInvalid, "证据必须属于一个订单 (evidence needs an order)")
	case !e.Kind.Valid():
		return head, Errorf(op, KindInvalid, "未知的证据类型 (unknown evidence kind) %q", e.Kind)
	case e.Actor == "":
		return head, Errorf(op, KindInvalid, "证据需要记录人 (evidence needs an actor)")
	case e.External && (len(e.Content) != 0 || !isSHA256Hex(e.ContentHash) || e.Size < 0):
		return head, Errorf(op, KindInvalid, "外部证据需要内容哈希和大小 (external evidence needs its hash and size)")
	case !e.External && len(e.Content) == 0:
		return head, Errorf(op, KindInvalid, "证据内容为空 (evidence is empty)")
	case len(e.Content) > MaxEvidenceSize:
		return head, Errorf(op, KindInvalid, "文件太大，最大 %d MB (file too large; at most %d MB)", MaxEvidenceSize>>20, MaxEvidenceSize>>20)
	}
	if e.CreatedAt.IsZero() {
		return head, Errorf(op, KindInternal, "evidence without a time")
	}
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	if !e.External {
		e.Size = int64(len(e.Content))
		e.ContentHash = ContentHash(e.Content)
	}
	e.Seq = head.Count + 1
	e.PrevLink = head.Link
	e.Link = e.computeLink(head.Link)
	return ChainHead{Count: e.Seq, Link: e.Link}, nil
}

func isSHA256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// computeLink hashes prev ‖ content hash ‖ metadata. Hex that does not
// decode contributes its raw bytes, so an edited hash still changes the link
// rather than panicking.
func (e *Evidence) computeLink(prev string) string {
	return chainLink(prev, e.ContentHash, e.canonicalMetadata())
}

// chainLink is the link of every hash chain here (order evidence and
// conversations): SHA-256(prev ‖ content hash ‖ canonical metadata).
func chainLink(prev, contentHash string, metadata []byte) string {
	h := sha256.New()
	h.Write(hexOrRaw(prev))
	h.Write(hexOrRaw(contentHash))
	h.Write(metadata)
	return hex.EncodeToString(h.Sum(nil))
}

// lengthPrefixed encodes fields as uvarint-length-prefixed strings, so no
// separator inside a value can make two different records encode alike.
func lengthPrefixed(fields ...string) []byte {
	var b []byte
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func hexOrRaw(s string) []byte {
	if b, err := hex.DecodeString(s); err == nil && len(b) == sha256.Size {
		return b
	}
	return []byte(s)
}

// canonicalMetadata encodes every field that is not the content as
// length-prefixed strings under a version tag: no separator inside a value
// can make two different records encode alike.
func (e *Evidence) canonicalMetadata() []byte {
	fields := []string{
		"tacklegate-evidence-v1",
		strconv.FormatInt(int64(e.OrderID), 10),
		strconv.Itoa(e.Seq),
		string(e.Kind),
		e.MediaType,
		e.Name,
		e.Ref,
		string(e.Actor),
		strconv.FormatInt(e.CreatedAt.UnixMicro(), 10),
		strconv.FormatInt(e.Size, 10),
		strconv.FormatBool(e.External),
	}
	return lengthPrefixed(fields...)
}

// BreakReason says how a chain is broken.
type BreakReason string

const (
	BreakUnreadable BreakReason = "unreadable"      // the sealed content was altered at rest
	BreakContent    BreakReason = "content_changed" // the content does not match its hash
	BreakRecord     BreakReason = "record_changed"  // metadata or hash edited: the link does not match
	BreakMissing    BreakReason = "missing"         // an item was deleted
	BreakReordered  BreakReason = "reordered"       // items moved or repeated
	BreakForeign    BreakReason = "foreign"         // an item of another order
	BreakHead       BreakReason = "head_mismatch"   // the chain does not end where its head says
)

var breakLabels = map[BreakReason]string{
	BreakUnreadable: "加密内容被改动", BreakContent: "内容被修改", BreakRecord: "记录被修改",
	BreakMissing: "有证据被删除", BreakReordered: "顺序被调换", BreakForeign: "混入了其他订单的证据",
	BreakHead: "链尾与记录不符",
}

// ChainBreak is the first place an evidence chain fails to verify.
type ChainBreak struct {
	Index  int // position in the items given; len(items) when items are missing at the end
	Seq    int // the item's stored sequence number, 0 past the end
	ID     EvidenceID
	Reason BreakReason
}

// Message is a user-safe description, Chinese first.
func (b *ChainBreak) Message() string {
	return fmt.Sprintf("证据链在第 %d 项处断开：%s (evidence chain broken at item %d: %s)", b.Index+1, breakLabels[b.Reason], b.Index+1, b.Reason)
}

func (b *ChainBreak) Error() string { return b.Message() }

// VerifyChain checks an order's items in stored order and returns the first
// break, or nil when every link holds. Content is checked against its hash
// unless the item is External (check the file with VerifyContent).
func VerifyChain(items []Evidence) *ChainBreak {
	prev := GenesisLink
	for i := range items {
		e := &items[i]
		brk := func(r BreakReason) *ChainBreak {
			return &ChainBreak{Index: i, Seq: e.Seq, ID: e.ID, Reason: r}
		}
		switch {
		case e.OrderID != items[0].OrderID:
			return brk(BreakForeign)
		case e.Unreadable:
			return brk(BreakUnreadable)
		case !e.External && ContentHash(e.Content) != e.ContentHash:
			return brk(BreakContent)
		case e.Seq > i+1:
			for _, later := range items[i+1:] {
				if later.Seq == i+1 {
					return brk(BreakReordered) // the item that belongs here is further on
				}
			}
			return brk(BreakMissing)
		case e.Seq < i+1:
			return brk(BreakReordered)
		}
		if e.computeLink(prev) != e.Link {
			if e.PrevLink != prev {
				// It was chained after some other item: the one before it
				// here is not the one before it when it was recorded.
				return brk(BreakReordered)
			}
			return brk(BreakRecord)
		}
		if e.PrevLink != prev {
			return brk(BreakRecord) // the stored prev_link alone was edited
		}
		prev = e.Link
	}
	return nil
}

// VerifyChainHead is VerifyChain plus a check that the chain ends at head,
// which catches items deleted from the end.
func VerifyChainHead(items []Evidence, head ChainHead) *ChainBreak {
	if b := VerifyChain(items); b != nil {
		return b
	}
	last := GenesisLink
	if len(items) > 0 {
		last = items[len(items)-1].Link
	}
	switch {
	case len(items) < head.Count:
		return &ChainBreak{Index: len(items), Reason: BreakMissing}
	case len(items) > head.Count || (head.Count > 0 && last != head.Link):
		i := len(items) - 1
		return &ChainBreak{Index: i, Seq: items[i].Seq, ID: items[i].ID, Reason: BreakHead}
	}
	return nil
}

// VerifyContent checks an External item's file against the chain.
func VerifyContent(e Evidence, content []byte) bool {
	return int64(len(content)) == e.Size && ContentHash(content) == e.ContentHash
}
