package gateway

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// The printable transcript: GET /api/v1/owner/conversations/:id/transcript
// is the conversation as an HTML page to read, print or save as PDF when a
// dispute needs it. Photos are inline; the chain is verified as the page
// is made and the verdict is shown at the top, with every message's link,
// so that a printed copy can be checked against an export. The JSON export
// (…/export) remains the machine-readable evidence.

var transcriptPage = template.Must(template.New("transcript").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(rental.Shanghai()).Format("2006-01-02 15:04:05")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>聊天记录 #{{.Code}} · {{.Customer}}</title>
<style>
body { font: 14px/1.5 -apple-system, "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; color: #191919; margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ddd; padding: 6px 8px; vertical-align: top; text-align: left; }
th { background: #f5f5f5; font-weight: 600; }
td.body { white-space: pre-wrap; word-break: break-word; }
.ok { border: 2px solid #07c160; background: #effbf4; padding: 8px 12px; margin: 12px 0; }
.bad { border: 2px solid #fa5151; background: #fdecec; padding: 8px 12px; margin: 12px 0; }
.meta { color: #666; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
img { max-width: 280px; max-height: 280px; display: block; }
tr.note td { background: #fff9e0; }
@media print { body { margin: 0; } tr { page-break-inside: avoid; } }
</style></head>
<body>
<h1>聊天记录 #{{.Code}}</h1>
<div class="meta">顾客：{{.Customer}}{{if .MemberNo}}（会员号 {{.MemberNo}}）{{end}}{{if .Phone}} · {{.Phone}}{{end}}</div>
<div class="meta">开始 {{when .OpenedAt}} · {{if .Resolved}}结束 {{when .ResolvedAt}}（{{.ResolvedBy}}）{{else}}进行中{{end}} · 接待 {{if .Assignee}}{{.Assignee}}{{else}}—{{end}}{{if .Rating}} · 评分 {{.Rating}} 分{{end}}{{if .Tags}} · 标签 {{.Tags}}{{end}}</div>
{{if .Verified}}<div class="ok"><strong>哈希链校验通过</strong>：{{.Count}} 条消息，首尾相连，没有被修改、删除或调换。链尾 <span class="mono">{{.Head}}</span></div>
{{else}}<div class="bad"><strong>哈希链校验未通过</strong>：{{.Break}}</div>{{end}}
{{if .Shredded}}<div class="bad">本会话内容已于 {{when .ShreddedAt}} 按保留期限销毁（{{.ShreddedWhy}}）：文字和文件无法再读取，以下仅余每条消息的哈希，哈希链仍可校验。</div>{{end}}
<table>
<thead><tr><th>#</th><th>时间（北京时间）</th><th>发送方</th><th>内容</th><th>送达</th><th>链接（SHA-256）</th></tr></thead>
<tbody>
{{range .Messages}}<tr{{if .Note}} class="note"{{end}}>
<td>{{.Seq}}</td><td>{{when .At}}</td><td>{{.Who}}</td>
<td class="body">{{if .Shredded}}<span class="meta">[内容已销毁]</span>{{else}}{{if .Image}}<img src="{{.Image}}" alt="图片 {{.Seq}}">{{end}}{{.Text}}{{if .MediaLine}}<div class="meta">{{.MediaLine}}</div>{{end}}{{end}}</td>
<td>{{.Delivery}}</td>
<td class="mono" title="{{.Link}}">{{short .Link}}<br><span class="meta">内容 {{short .ContentHash}}</span></td>
</tr>
{{end}}</tbody></table>
<p class="meta">导出：{{when .ExportedAt}}，{{.ExportedBy}}。校验方法：link = SHA-256(上一条的 link ‖ 内容哈希 ‖ 规范化元数据 v1)，第一条的上一条为 64 个 0；完整数据（含文件与全部哈希）见 JSON 导出 /api/v1/owner/conversations/{{.ID}}/export。</p>
</body></html>
`))

type transcriptRow struct {
	Seq                 int
	At                  time.Time
	Who, Text, Delivery string
	MediaLine           string
	Image               template.URL
	Link, ContentHash   string
	Note, Shredded      bool
}

type transcriptData struct {
	ID                               rental.ConversationID
	Code, Customer, MemberNo, Phone  string
	OpenedAt, ResolvedAt, ShreddedAt time.Time
	Resolved                         bool
	ResolvedBy, Assignee, Tags       string
	Rating                           int
	Verified                         bool
	Count                            int
	Head, Break                      string
	Shredded                         bool
	ShreddedWhy                      string
	Messages                         []transcriptRow
	ExportedAt                       time.Time
	ExportedBy                       string
}

// transcript: GET /api/v1/owner/conversations/:id/transcript.
func (h *chatHandlers) transcriptHTML(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	conv, msgs, err := h.b.db.Transcript(ctx, rental.ConversationID(id), true)
	if err != nil {
		return err
	}
	m, err := h.b.db.Member(ctx, conv.MemberID)
	if err != nil {
		return err
	}
	names := newStaffNames(ctx, h.b.db)
	staffLabel := func(u string) string {
		if u == "" {
			return ""
		}
		return names.name(u) + "（" + u + "）"
	}
	d := transcriptData{
		ID: conv.ID, Code: conv.Code(), Customer: rental.CustomerLabel(m), MemberNo: m.MemberNo, OpenedAt: conv.OpenedAt,
		Resolved: !conv.Live(), ResolvedAt: conv.ResolvedAt, ResolvedBy: staffLabel(conv.ResolvedBy), Assignee: staffLabel(conv.Assignee),
		Tags: strings.Join(conv.Tags, "、"), Rating: conv.Rating, Count: conv.Head.Count, Head: conv.Head.Link,
		ExportedAt: time.Now(), ExportedBy: caller(c).Subject, Verified: true,
	}
	if m.Phone != "" {
		d.Phone = rental.MaskPhone(m.Phone)
	}
	if brk := conv.VerifyChain(msgs); brk != nil {
		d.Verified, d.Break = false, brk.Message()
	}
	if sh, err := h.b.db.ConversationShredded(ctx, conv.ID); err == nil && sh != nil {
		d.Shredded, d.ShreddedAt, d.ShreddedWhy = true, sh.At, sh.Reason
	}
	for _, msg := range msgs {
		row := transcriptRow{Seq: msg.Seq, At: msg.CreatedAt, Text: msg.Text, Link: msg.Link, ContentHash: msg.ContentHash,
			Note: msg.Direction == rental.ChatNote, Shredded: msg.Shredded}
		switch {
		case msg.Direction == rental.ChatIn:
			row.Who = "顾客"
		case msg.Direction == rental.ChatNote:
			row.Who = "内部备注 · " + staffLabel(strings.TrimPrefix(msg.Author, "staff:"))
		case msg.Author == rental.SystemAuthor:
			row.Who = "系统自动回复"
		case msg.Author == rental.AssistantAuthor:
			row.Who = "智能客服"
		default:
			row.Who = "店员 " + staffLabel(strings.TrimPrefix(msg.Author, "staff:"))
		}
		if msg.Unreadable {
			row.Text = "[无法解密：存储的内容被改动]"
		}
		if msg.MediaSize > 0 && !msg.Shredded {
			kind := map[rental.ChatKind]string{rental.ChatImage: "图片", rental.ChatVoice: "语音", rental.ChatPage: "小程序卡片缩略图"}[msg.Kind]
			row.MediaLine = fmt.Sprintf("%s · %s · %d 字节 · SHA-256 %s", kind, msg.MediaType, msg.MediaSize, msg.MediaHash)
			if msg.Kind == rental.ChatVoice && msg.Duration > 0 {
				row.MediaLine = fmt.Sprintf("%s · %d 秒", row.MediaLine, int(msg.Duration.Round(time.Second)/time.Second))
			}
			if chatImageTypes[msg.MediaType] && len(msg.Media) > 0 {
				row.Image = template.URL("data:" + msg.MediaType + ";base64," + base64.StdEncoding.EncodeToString(msg.Media))
			}
		}
		dl := msg.ToCustomer
		if msg.Direction == rental.ChatIn {
			dl = msg.ToStaff
		}
		if dl.Status != rental.DeliveryNone {
			row.Delivery = map[rental.DeliveryStatus]string{rental.DeliveryStored: "待发送", rental.DeliverySent: "已送达", rental.DeliveryHeld: "等待顾客",
				rental.DeliveryNotified: "已发订阅提醒", rental.DeliveryFailed: "失败"}[dl.Status]
			if dl.Reason != "" {
				row.Delivery += "：" + dl.Reason
			}
		}
		d.Messages = append(d.Messages, row)
	}
	var b strings.Builder
	if err := transcriptPage.Execute(&b, d); err != nil {
		return rental.Wrap("chat.transcript", rental.KindInternal, "", err)
	}
	c.Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="conversation-`+conv.Code()+`.html"`)
	c.Type("html", "utf-8")
	return c.SendString(b.String())
}
