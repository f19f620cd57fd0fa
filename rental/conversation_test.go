package rental

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConversationCode(t *testing.T) {
	for in, want := range map[string]ConversationID{
		"A7": 7, "a7": 7, "#A7": 7, "＃Ａ７": 7, " 12 ": 12, "A0012": 12,
		"": 0, "A": 0, "B7": 0, "A-1": 0, "A0": 0, "鲫鱼": 0, "A99999999999999999999": 0,
	} {
		got, ok := ParseConversationCode(in)
		if got != want || ok != (want != 0) {
			t.Errorf("ParseConversationCode(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if ConversationCode(7) != "A7" {
		t.Errorf("code of 7: %s", ConversationCode(7))
	}
}

func TestParseStaffCommand(t *testing.T) {
	cases := []struct {
		in   string
		want StaffCommand
	}{
		{"好的，马上给您换一根", StaffCommand{Kind: CmdReply, Text: "好的，马上给您换一根"}},
		{"  鱼线在左边抽屉 ", StaffCommand{Kind: CmdReply, Text: "鱼线在左边抽屉"}},
		{"#A7 鱼竿拧松再收", StaffCommand{Kind: CmdReply, Code: 7, Text: "鱼竿拧松再收"}},
		{"#a12好的！", StaffCommand{Kind: CmdReply, Code: 12, Text: "好的！"}},
		{"＃Ａ７　收到，谢谢！", StaffCommand{Kind: CmdReply, Code: 7, Text: "收到，谢谢！"}},
		{"#A7", StaffCommand{Kind: CmdSwitch, Code: 7}},
		{"#鲫鱼饵料还有吗", StaffCommand{Kind: CmdReply, Text: "#鲫鱼饵料还有吗"}},
		{"/list", StaffCommand{Kind: CmdList}},
		{"／LIST", StaffCommand{Kind: CmdList}},
		{"/take A7", StaffCommand{Kind: CmdTake, Code: 7}},
		{"/take   #a7", StaffCommand{Kind: CmdTake, Code: 7}},
		{"／ｔａｋｅ　Ａ７", StaffCommand{Kind: CmdTake, Code: 7}},
		{"/close", StaffCommand{Kind: CmdClose}},
		{"/close A3", StaffCommand{Kind: CmdClose, Code: 3}},
		{"/on", StaffCommand{Kind: CmdOn}},
		{"/off", StaffCommand{Kind: CmdOff}},
		{"/video A7", StaffCommand{Kind: CmdVideo, Code: 7}},
		{"/video", StaffCommand{Kind: CmdVideo}},
		{"/note 顾客要求周六取货，押金已退", StaffCommand{Kind: CmdNote, Text: "顾客要求周六取货，押金已退"}},
		{"/help", StaffCommand{Kind: CmdHelp}},
		{"/?", StaffCommand{Kind: CmdHelp}},
		{"/transfer A7 xiaoli", StaffCommand{Kind: CmdTransfer, Code: 7, Text: "xiaoli"}},
		{"／ｔｒａｎｓｆｅｒ　Ａ７　小李", StaffCommand{Kind: CmdTransfer, Code: 7, Text: "小李"}},
		{"/tag A7 押金 续租", StaffCommand{Kind: CmdTag, Code: 7, Text: "押金 续租"}},
		{"/untag #a7 押金", StaffCommand{Kind: CmdUntag, Code: 7, Text: "押金"}},
	}
	for _, c := range cases {
		if got := ParseStaffCommand(c.in); got != c.want {
			t.Errorf("ParseStaffCommand(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	for _, in := range []string{"/take", "/take 鲫鱼", "/note", "/dance", "/note   ", "/transfer A7", "/transfer xiaoli", "/tag A7", "/untag"} {
		got := ParseStaffCommand(in)
		if got.Kind != CmdUnknown || got.Problem == "" {
			t.Errorf("ParseStaffCommand(%q) = %+v, want unknown with a problem", in, got)
		}
	}
	if !strings.Contains(StaffHelp, "/take A7") || !strings.Contains(StaffHelp, "/note") {
		t.Error("help does not list the commands")
	}
}

func TestParseRating(t *testing.T) {
	for in, want := range map[string]int{"5": 5, " 1 ": 1, "５": 5, "4分": 4, "3 星": 3, "0": 0, "6": 0, "55": 0, "好": 0, "": 0, "5分钟后到": 0} {
		got, ok := ParseRating(in)
		if got != want || ok != (want != 0) {
			t.Errorf("ParseRating(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}

func TestConversationLifecycle(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	c := &Conversation{ID: 7, State: ConversationOpen}
	if err := c.Assign("laowang", t0); err != nil || c.State != ConversationAssigned || c.Assignee != "laowang" {
		t.Fatalf("assign: %v %+v", err, c)
	}
	if err := c.Rate(5, t0); ErrorKind(err) != KindConflict {
		t.Errorf("rating a live conversation: %v", err)
	}
	if err := c.Resolve("laowang", t0.Add(time.Minute)); err != nil || c.Live() {
		t.Fatalf("resolve: %v", err)
	}
	if err := c.Resolve("laowang", t0); ErrorKind(err) != KindConflict {
		t.Errorf("second resolve: %v", err)
	}
	if err := c.Assign("xiaoli", t0); ErrorKind(err) != KindConflict {
		t.Errorf("assigning a resolved conversation: %v", err)
	}
	if !c.AwaitsRating(t0.Add(10*time.Minute), DefaultRatingWindow) || c.AwaitsRating(t0.Add(time.Hour), DefaultRatingWindow) {
		t.Error("rating window wrong")
	}
	if err := c.Rate(6, t0); ErrorKind(err) != KindInvalid {
		t.Errorf("rating 6: %v", err)
	}
	if err := c.Rate(4, t0.Add(2*time.Minute)); err != nil || c.Rating != 4 {
		t.Fatalf("rate: %v", err)
	}
	if c.AwaitsRating(t0.Add(3*time.Minute), DefaultRatingWindow) {
		t.Error("still awaiting a rating after one was given")
	}
	c.LastCustomerAt = t0
	if !c.WindowOpen(t0.Add(47*time.Hour)) || c.WindowOpen(t0.Add(49*time.Hour)) {
		t.Error("48-hour window wrong")
	}
}

func TestCustomerLabel(t *testing.T) {
	for _, c := range []struct {
		m    Member
		want string
	}{
		{Member{ID: 3, Name: "张伟", Phone: "8613800138001"}, "张伟"},
		{Member{ID: 3, Phone: "8613800138001"}, "138****8001"},
		{Member{ID: 3, Phone: "85291234567"}, MaskPhone("85291234567")},
		{Member{ID: 42}, "顾客42"},
	} {
		if got := CustomerLabel(c.m); got != c.want {
			t.Errorf("CustomerLabel(%+v) = %q, want %q", c.m, got, c.want)
		}
	}
	if StaffTag(7, "张伟") != "[#A7 张伟]" {
		t.Error(StaffTag(7, "张伟"))
	}
}

func TestChooseStaff(t *testing.T) {
	loads := []StaffLoad{
		{UserID: "laowang", OnDuty: true, Open: 3},
		{UserID: "xiaoli", OnDuty: true, Open: 1},
		{UserID: "ahua", OnDuty: false, Open: 0},
	}
	cases := []struct {
		name            string
		loads           []StaffLoad
		sticky, current string
		max             int
		want            Assignment
	}{
		{"sticky wins over fewer", loads, "laowang", "", 8, Assignment{"laowang", AssignSticky}},
		{"sticky off duty", loads, "ahua", "", 8, Assignment{"xiaoli", AssignLeastLoaded}},
		{"no history", loads, "", "", 8, Assignment{"xiaoli", AssignLeastLoaded}},
		{"sticky at capacity", loads, "laowang", "", 3, Assignment{"xiaoli", AssignLeastLoaded}},
		{"own conversation counted once", loads, "laowang", "laowang", 3, Assignment{"laowang", AssignSticky}},
		{"all busy", loads, "", "", 1, Assignment{"", AssignAllBusy}},
		{"nobody on duty", []StaffLoad{{UserID: "ahua"}}, "ahua", "", 8, Assignment{"", AssignNobody}},
		{"no staff", nil, "", "", 8, Assignment{"", AssignNobody}},
		{"default max", []StaffLoad{{UserID: "a", OnDuty: true, Open: DefaultMaxOpen - 1}}, "", "", 0, Assignment{"a", AssignLeastLoaded}},
	}
	for _, c := range cases {
		if got := ChooseStaff(c.loads, c.sticky, c.current, c.max); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestAMRDuration(t *testing.T) {
	nb := []byte("#!AMR\n")
	for range 150 { // 3 s of 12.2 kbit/s frames
		nb = append(nb, 0x3C)
		nb = append(nb, make([]byte, 31)...)
	}
	if d, ok := AMRDuration(nb); !ok || d != 3*time.Second {
		t.Errorf("AMR-NB: %v %v", d, ok)
	}
	wb := []byte("#!AMR-WB\n")
	for range 50 {
		wb = append(wb, 8<<3) // 23.85 kbit/s: 60 bytes
		wb = append(wb, make([]byte, 60)...)
	}
	if d, ok := AMRDuration(append(wb, 0x44)); !ok || d != time.Second {
		t.Errorf("AMR-WB with a truncated tail: %v %v", d, ok)
	}
	if _, ok := AMRDuration([]byte("RIFF....WAVE")); ok {
		t.Error("not AMR accepted")
	}
}

func chainOf(t *testing.T, c *Conversation, msgs ...ChatMessage) []ChatMessage {
	t.Helper()
	head := NewConversationHead()
	for i := range msgs {
		msgs[i].ConversationID = c.ID
		var err error
		if head, err = msgs[i].Chain(head); err != nil {
			t.Fatal(err)
		}
		msgs[i].ID = ChatMessageID(100 + i)
	}
	c.Head = head
	return msgs
}

func TestTranscriptChain(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 123456789, time.UTC)
	build := func() (*Conversation, []ChatMessage) {
		c := &Conversation{ID: 7}
		return c, chainOf(t, c,
			ChatMessage{Direction: ChatIn, Kind: ChatText, Author: CustomerAuthor(3), Upstream: "wechat:msg:1", Text: "鱼竿卡住了怎么办", CreatedAt: t0},
			ChatMessage{Direction: ChatIn, Kind: ChatImage, Author: CustomerAuthor(3), Upstream: "wechat:msg:2", Media: []byte("\x89PNG...."), MediaType: "image/png", CreatedAt: t0.Add(time.Second)},
			ChatMessage{Direction: ChatOut, Kind: ChatText, Author: StaffAuthor("laowang"), Text: "拧松再收", CreatedAt: t0.Add(time.Minute)},
			ChatMessage{Direction: ChatNote, Kind: ChatText, Author: StaffAuthor("laowang"), Text: "顾客第一次租", CreatedAt: t0.Add(2 * time.Minute)},
		)
	}
	c, msgs := build()
	if msgs[0].CreatedAt.Nanosecond()%1000 != 0 || msgs[1].Seq != 2 || msgs[1].PrevLink != msgs[0].Link || msgs[1].MediaHash == "" {
		t.Fatalf("chain fields: %+v", msgs[1])
	}
	if b := c.VerifyChain(msgs); b != nil {
		t.Fatalf("intact chain broken: %v", b)
	}
	cases := []struct {
		name   string
		tamper func(c *Conversation, m []ChatMessage) []ChatMessage
		index  int
		reason TranscriptBreakReason
	}{
		{"text edited", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[0].Text = "鱼竿断了"; return m }, 0, TranscriptContent},
		{"media swapped", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[1].Media = []byte("\x89PNG!!!!"); return m }, 1, TranscriptContent},
		{"hash rewritten with the text", func(_ *Conversation, m []ChatMessage) []ChatMessage {
			m[2].Text = "自己修"
			m[2].ContentHash = chatContentHash(m[2].Text, nil)
			return m
		}, 2, TranscriptRecord},
		{"author changed", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[2].Author = StaffAuthor("xiaoli"); return m }, 2, TranscriptRecord},
		{"time changed", func(_ *Conversation, m []ChatMessage) []ChatMessage {
			m[0].CreatedAt = m[0].CreatedAt.Add(time.Hour)
			return m
		}, 0, TranscriptRecord},
		{"note made public", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[3].Direction = ChatOut; return m }, 3, TranscriptRecord},
		{"middle deleted", func(_ *Conversation, m []ChatMessage) []ChatMessage { return append(m[:1:1], m[2:]...) }, 1, TranscriptMissing},
		{"last deleted", func(_ *Conversation, m []ChatMessage) []ChatMessage { return m[:3] }, 3, TranscriptMissing},
		{"swapped", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[1], m[2] = m[2], m[1]; return m }, 1, TranscriptReordered},
		{"unreadable", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[1].Unreadable = true; return m }, 1, TranscriptUnreadable},
		{"foreign", func(_ *Conversation, m []ChatMessage) []ChatMessage { m[2].ConversationID = 8; return m }, 2, TranscriptForeign},
		{"head moved", func(c *Conversation, m []ChatMessage) []ChatMessage { c.Head.Link = m[2].Link; return m }, 3, TranscriptHead},
	}
	for _, tc := range cases {
		c, msgs := build()
		b := c.VerifyChain(tc.tamper(c, msgs))
		if b == nil || b.Index != tc.index || b.Reason != tc.reason {
			t.Errorf("%s: break %+v, want index %d %s", tc.name, b, tc.index, tc.reason)
			continue
		}
		if !strings.Contains(b.Message(), "断开") {
			t.Errorf("%s: message %q", tc.name, b.Message())
		}
	}
	empty := &Conversation{ID: 9, Head: NewConversationHead()}
	if b := empty.VerifyChain(nil); b != nil {
		t.Errorf("empty chain: %v", b)
	}
}

func TestChainRefusesBadMessages(t *testing.T) {
	t0 := time.Now()
	for name, m := range map[string]ChatMessage{
		"no conversation": {Direction: ChatIn, Kind: ChatText, Author: "system", Text: "x", CreatedAt: t0},
		"bad kind":        {ConversationID: 1, Direction: ChatIn, Kind: "video", Author: "system", Text: "x", CreatedAt: t0},
		"bad direction":   {ConversationID: 1, Direction: "sideways", Kind: ChatText, Author: "system", Text: "x", CreatedAt: t0},
		"no author":       {ConversationID: 1, Direction: ChatIn, Kind: ChatText, Text: "x", CreatedAt: t0},
		"empty":           {ConversationID: 1, Direction: ChatIn, Kind: ChatText, Author: "system", CreatedAt: t0},
		"too big":         {ConversationID: 1, Direction: ChatIn, Kind: ChatImage, Author: "system", Media: bytes.Repeat([]byte{1}, MaxChatMedia+1), CreatedAt: t0},
		"no time":         {ConversationID: 1, Direction: ChatIn, Kind: ChatText, Author: "system", Text: "x"},
	} {
		var e *Error
		if _, err := m.Chain(NewConversationHead()); !errors.As(err, &e) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPreviewAndVoiceText(t *testing.T) {
	m := ChatMessage{Kind: ChatVoice, Duration: 3200 * time.Millisecond}
	if m.Preview(10) != "[语音 3秒]" {
		t.Error(m.Preview(10))
	}
	m = ChatMessage{Kind: ChatText, Text: "一二三四五六七八九十十一"}
	if got := m.Preview(5); got != "一二三四…" {
		t.Error(got)
	}
	if s := VoiceNoteText("老王", 12); !strings.Contains(s, "老王") || !strings.Contains(s, "12 秒") {
		t.Error(s)
	}
}

// FuzzParseStaffCommand: whatever a staff member types, the parser neither
// panics nor returns a command that is not one of the kinds, and a reply or
// note never loses the text.
func FuzzParseStaffCommand(f *testing.F) {
	for _, s := range []string{"/take A7", "#A7 好的", "／ｔｒａｎｓｆｅｒ　Ａ７　小李", "/tag A7 押金 续租", "#", "/", "#A", "＃Ａ", "/note", "5分"} {
		f.Add(s)
	}
	kinds := map[StaffCommandKind]bool{CmdReply: true, CmdSwitch: true, CmdList: true, CmdTake: true, CmdClose: true, CmdOn: true, CmdOff: true,
		CmdVideo: true, CmdNote: true, CmdHelp: true, CmdTransfer: true, CmdTag: true, CmdUntag: true, CmdUnknown: true}
	f.Fuzz(func(t *testing.T, in string) {
		c := ParseStaffCommand(in)
		if !kinds[c.Kind] {
			t.Fatalf("%q: kind %q", in, c.Kind)
		}
		if c.Kind == CmdUnknown && c.Problem == "" {
			t.Fatalf("%q: unknown without a problem", in)
		}
		if (c.Kind == CmdTransfer || c.Kind == CmdTag || c.Kind == CmdUntag || c.Kind == CmdTake) && c.Code <= 0 {
			t.Fatalf("%q: %s without a conversation", in, c.Kind)
		}
		if c.Kind == CmdReply && c.Code == 0 && c.Text != strings.TrimSpace(in) {
			t.Fatalf("%q: reply text %q", in, c.Text)
		}
	})
}
