package rental

import (
	"fmt"
	"strings"
)

// StaffCommandKind is what a staff member's text in the WeCom app asks for.
type StaffCommandKind string

const (
	CmdReply    StaffCommandKind = "reply"    // plain text: to the current conversation, or to Code with "#A7 text"
	CmdSwitch   StaffCommandKind = "switch"   // "#A7" alone: make A7 the current conversation
	CmdList     StaffCommandKind = "list"     // /list
	CmdTake     StaffCommandKind = "take"     // /take A7
	CmdClose    StaffCommandKind = "close"    // /close [A7]
	CmdOn       StaffCommandKind = "on"       // /on
	CmdOff      StaffCommandKind = "off"      // /off
	CmdVideo    StaffCommandKind = "video"    // /video [A7]
	CmdNote     StaffCommandKind = "note"     // /note text
	CmdHelp     StaffCommandKind = "help"     // /help
	CmdTransfer StaffCommandKind = "transfer" // /transfer A7 xiaoli: give A7 to a colleague (userid or name in Text)
	CmdTag      StaffCommandKind = "tag"      // /tag A7 押金 续租: add tags (space-separated in Text)
	CmdUntag    StaffCommandKind = "untag"    // /untag A7 押金: remove tags
	CmdUnknown  StaffCommandKind = "unknown"  // anything else starting with "/": answered with the help
)

// StaffCommand is a parsed staff message.
type StaffCommand struct {
	Kind StaffCommandKind
	Code ConversationID // 0: the staff member's current conversation
	Text string         // the reply or note
	// Problem, for CmdUnknown, says what was wrong ("未知命令 /foo").
	Problem string
}

// ParseStaffCommand reads what a staff member wrote in the WeCom app.
// Full-width "／" and "＃" (typed by Chinese input methods) work like "/"
// and "#"; command names are case-insensitive.
func ParseStaffCommand(text string) StaffCommand {
	raw := strings.TrimSpace(text)
	folded := strings.TrimSpace(chatFoldWidth(raw))
	switch {
	case strings.HasPrefix(folded, "#"):
		if id, body, ok := chatCodePrefix(raw); ok {
			if body == "" {
				return StaffCommand{Kind: CmdSwitch, Code: id}
			}
			return StaffCommand{Kind: CmdReply, Code: id, Text: body}
		}
		// "#鲫鱼" is just text.
	case strings.HasPrefix(folded, "/"):
		name, rest := chatSplitWord(folded[1:])
		name = strings.ToLower(name)
		switch name {
		case "list", "ls":
			return StaffCommand{Kind: CmdList}
		case "help", "h", "?":
			return StaffCommand{Kind: CmdHelp}
		case "on":
			return StaffCommand{Kind: CmdOn}
		case "off":
			return StaffCommand{Kind: CmdOff}
		case "take", "close", "video":
			kind := map[string]StaffCommandKind{"take": CmdTake, "close": CmdClose, "video": CmdVideo}[name]
			if rest == "" {
				if kind == CmdTake {
					return StaffCommand{Kind: CmdUnknown, Problem: "/take 需要会话编号，例如 /take A7"}
				}
				return StaffCommand{Kind: kind}
			}
			id, ok := ParseConversationCode(rest)
			if !ok {
				return StaffCommand{Kind: CmdUnknown, Problem: fmt.Sprintf("会话编号 %q 不对，应像 A7 这样", rest)}
			}
			return StaffCommand{Kind: kind, Code: id}
		case "transfer", "tag", "untag":
			kind := map[string]StaffCommandKind{"transfer": CmdTransfer, "tag": CmdTag, "untag": CmdUntag}[name]
			codeWord, rest := chatSplitWord(rest)
			id, ok := ParseConversationCode(codeWord)
			if !ok || rest == "" {
				example := map[StaffCommandKind]string{CmdTransfer: "/transfer A7 xiaoli", CmdTag: "/tag A7 押金", CmdUntag: "/untag A7 押金"}[kind]
				return StaffCommand{Kind: CmdUnknown, Problem: "/" + name + " 需要会话编号和内容，例如 " + example}
			}
			// The argument as typed (names and tags are Chinese).
			return StaffCommand{Kind: kind, Code: id, Text: chatAfterWord(chatAfterWord(raw))}
		case "note":
			body := chatAfterWord(raw)
			if body == "" {
				return StaffCommand{Kind: CmdUnknown, Problem: "/note 后面要写备注内容，例如 /note 顾客要求周六取货"}
			}
			return StaffCommand{Kind: CmdNote, Text: body}
		}
		return StaffCommand{Kind: CmdUnknown, Problem: "未知命令 /" + name}
	}
	return StaffCommand{Kind: CmdReply, Text: raw}
}

// chatSplitWord splits off the first space-separated word.
func chatSplitWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t\n"); i >= 0 {
		return s[:i], strings.TrimSpace(s[i+1:])
	}
	return s, ""
}

// chatAfterWord returns the original text after its first word ("/note …").
func chatAfterWord(raw string) string {
	raw = strings.TrimSpace(raw)
	if i := strings.IndexFunc(raw, isChatSpace); i >= 0 {
		return strings.TrimSpace(raw[i:])
	}
	return ""
}

// chatCodePrefix reads "#A7 text", "＃Ａ７text" or "#7": the code right
// after the "#", and the reply as typed after it (folding the reply would
// turn full-width punctuation in Chinese text into ASCII).
func chatCodePrefix(raw string) (ConversationID, string, bool) {
	rs := []rune(strings.TrimSpace(raw))
	if len(rs) == 0 || (rs[0] != '#' && rs[0] != '＃') {
		return 0, "", false
	}
	i := 1
	if i < len(rs) && strings.ContainsRune("AaＡａ", rs[i]) {
		i++
	}
	start := i
	for i < len(rs) && ((rs[i] >= '0' && rs[i] <= '9') || (rs[i] >= '０' && rs[i] <= '９')) {
		i++
	}
	if i == start {
		return 0, "", false
	}
	id, ok := ParseConversationCode(string(rs[1:i]))
	if !ok {
		return 0, "", false
	}
	return id, strings.TrimFunc(string(rs[i:]), isChatSpace), true
}

func isChatSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\u3000' }

// StaffHelp is the answer to /help and to a command the gateway does not
// know.
const StaffHelp = `可用命令：
直接发文字 — 回复当前会话
#A7 内容 — 回复会话 A7（并切换到它）
#A7 — 切换到会话 A7
/list — 查看进行中的会话
/take A7 — 接待会话 A7
/close — 结束当前会话并请顾客评分（或 /close A7）
/note 内容 — 给当前会话记内部备注，顾客看不到
/transfer A7 小李 — 把会话转给同事
/tag A7 押金 — 给会话加标签（/untag A7 押金 去掉）
/video A7 — 发起视频通话
/on — 上班接单　/off — 下班
/help — 显示本帮助
发图片或语音：发给当前会话的顾客`

// Texts the gateway writes to customers. Honest, short, Chinese.
const (
	TextAwayReply    = "您好，客服暂时不在线，我们会尽快回复您。"
	TextBusyReply    = "您好，客服正在忙，已为您排队，请稍候。"
	TextAskRating    = "本次服务已结束，感谢您的咨询！请为本次服务打分：直接回复数字 1–5（5 分为非常满意）。"
	textThanksRating = "感谢您的评分（%d 分）！祝您渔获满满。"
)

// ThanksForRating answers a customer's rating.
func ThanksForRating(score int) string { return fmt.Sprintf(textThanksRating, score) }

// VoiceNoteText is what the customer gets when a staff member answers with
// a voice note: mini-program customer-service messages have no voice type
// (text, image, link and mini-program page only), so the customer is told
// in text and the recording is kept in the conversation.
func VoiceNoteText(staffName string, seconds int) string {
	who := "店员"
	if staffName != "" {
		who = "店员" + staffName
	}
	length := ""
	if seconds > 0 {
		length = fmt.Sprintf("（约 %d 秒）", seconds)
	}
	return who + "给您留了一段语音" + length + "。微信客服消息暂不能播放语音，语音已保存在本次会话记录中；如需文字说明，请直接回复。"
}

// StaffTag is the prefix of everything a staff member receives about a
// conversation: "[#A7 张伟]".
func StaffTag(c ConversationID, customer string) string {
	return "[#" + ConversationCode(c) + " " + customer + "]"
}
