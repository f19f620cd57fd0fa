package gateway

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Quick-help entries: the buttons the customer page shows ("教我装鱼线"),
// managed by the owner.
//
//	GET    /api/v1/quickhelp                anyone: the enabled entries the caller's flags allow
//	POST   /api/v1/quickhelp/:id/use        customers: count a tap
//	GET    /api/v1/owner/quickhelp          owner: every entry, with taps (total and in ?days=, default 30)
//	POST   /api/v1/owner/quickhelp          owner: add an entry (at the end)
//	PUT    /api/v1/owner/quickhelp/:id      owner: change an entry
//	DELETE /api/v1/owner/quickhelp/:id      owner: remove an entry
//	POST   /api/v1/owner/quickhelp/order    owner: {"ids":[…]} every entry, in the new order
//
// An entry is left out for a caller when the flag its action needs is off
// for them: quick_help for every entry, video_help for video and voice,
// in_app_chat for chat.

// QuickHelp configures the quick-help routes.
type QuickHelp struct {
	DB *store.DB
	// Features, when set, hides entries whose flag is off for the caller.
	Features *Features
}

// Quick-help actions.
var quickHelpActions = map[string]string{"video": FeatureVideoHelp, "voice": FeatureVideoHelp, "chat": FeatureInAppChat, "article": ""}

// QuickHelpIcons are the built-in icon names (the pages draw them); any
// other icon is an emoji.
var QuickHelpIcons = []string{"video", "voice", "chat", "article", "rod", "reel", "line", "hook", "fish", "box", "help", "tool"}

// quickHelpPurposes are the call purposes an entry may start (calls.purpose).
var quickHelpPurposes = map[string]bool{"": true, "guidance": true, "inspection": true, "inspection_pickup": true, "inspection_return": true, "other": true}

// MountQuickHelp adds the quick-help routes. It needs the identity routes.
func (s *Server) MountQuickHelp(q *QuickHelp) {
	if s.auth == nil {
		panic("gateway: MountQuickHelp needs Options.Identity")
	}
	h := &quickHelpHandlers{s: s, q: q}
	s.api("GET", "/quickhelp", anyone, h.list)
	s.api("POST", "/quickhelp/:id/use", customers, h.use)
	s.api("GET", "/owner/quickhelp", ownerOnly, h.ownerList)
	s.api("POST", "/owner/quickhelp", ownerOnly, h.create)
	s.api("POST", "/owner/quickhelp/order", ownerOnly, h.reorder)
	s.api("PUT", "/owner/quickhelp/:id", ownerOnly, h.update)
	s.api("DELETE", "/owner/quickhelp/:id", ownerOnly, h.remove)
}

type quickHelpHandlers struct {
	s *Server
	q *QuickHelp
}

type quickHelpView struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Icon        string `json:"icon"`
	Action      string `json:"action"`
	Text        string `json:"text"`
	ArticleSlug string `json:"article_slug"`
	Purpose     string `json:"purpose"`
}

// visible reports whether an entry's action is on for the caller.
func (h *quickHelpHandlers) visible(sub FeatureSubject, action string) bool {
	f := h.q.Features
	if f == nil {
		return true
	}
	if !f.EnabledFor(sub, FeatureQuickHelp) {
		return false
	}
	flag := quickHelpActions[action]
	return flag == "" || f.EnabledFor(sub, flag)
}

func (h *quickHelpHandlers) list(c *fiber.Ctx) error {
	sub, err := h.s.featureSubject(c)
	if err != nil {
		return err
	}
	rows, err := h.q.DB.QuickHelpEntries(c.UserContext(), true)
	if err != nil {
		return err
	}
	out := []quickHelpView{}
	for _, e := range rows {
		if h.visible(sub, e.Action) {
			out = append(out, quickHelpView{ID: e.ID, Title: e.Title, Icon: e.Icon, Action: e.Action, Text: e.Text, ArticleSlug: e.ArticleSlug, Purpose: e.Purpose})
		}
	}
	return c.JSON(fiber.Map{"entries": out})
}

func (h *quickHelpHandlers) use(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	m, err := h.s.CustomerMember(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	entries, err := h.q.DB.QuickHelpEntries(ctx, true)
	if err != nil {
		return err
	}
	sub := FeatureSubject{MemberID: int64(m.ID), Tier: string(m.Tier)}
	for _, e := range entries {
		if e.ID == id && !h.visible(sub, e.Action) {
			// Hidden from this customer: a tap on a stale page is not a use.
			return rental.Errorf("quickhelp.use", rental.KindNotFound, "这个快捷求助暂未对您开放 (quick-help entry %d is not available to you)", id)
		}
	}
	if err := h.q.DB.UseQuickHelp(ctx, id, int64(m.ID), time.Now()); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *quickHelpHandlers) ownerList(c *fiber.Ctx) error {
	days := min(max(c.QueryInt("days", 30), 1), 366)
	ctx := c.UserContext()
	rows, err := h.q.DB.QuickHelpEntries(ctx, false)
	if err != nil {
		return err
	}
	now := time.Now()
	uses, err := h.q.DB.QuickHelpUses(ctx, now.AddDate(0, 0, -days), now.Add(time.Second))
	if err != nil {
		return err
	}
	recent := map[int64]int64{}
	for _, u := range uses {
		recent[u.ID] = u.Uses
	}
	type ownerView struct {
		store.QuickHelpEntry
		RecentUses int64 `json:"recent_uses"`
	}
	out := make([]ownerView, len(rows))
	for i, e := range rows {
		out[i] = ownerView{QuickHelpEntry: e, RecentUses: recent[e.ID]}
	}
	return c.JSON(fiber.Map{"entries": out, "days": days, "icons": QuickHelpIcons})
}

// quickHelpInput is an entry as the console sends it; enabled defaults to
// true.
type quickHelpInput struct {
	Title       string `json:"title"`
	Icon        string `json:"icon"`
	Action      string `json:"action"`
	Text        string `json:"text"`
	ArticleSlug string `json:"article_slug"`
	Purpose     string `json:"purpose"`
	Enabled     *bool  `json:"enabled"`
}

func validQuickHelpIcon(icon string) bool {
	if icon == "" {
		return true
	}
	for _, n := range QuickHelpIcons {
		if icon == n {
			return true
		}
	}
	// An emoji: a few runes, none of them letters, digits or spaces (a
	// flag or a family emoji is several code points).
	if utf8.RuneCountInString(icon) > 8 || !utf8.ValidString(icon) {
		return false
	}
	for _, r := range icon {
		if r < 0x80 || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

func (h *quickHelpHandlers) entry(c *fiber.Ctx) (store.QuickHelpEntry, error) {
	const op = "quickhelp.entry"
	var in quickHelpInput
	if err := body(c, &in); err != nil {
		return store.QuickHelpEntry{}, err
	}
	e := store.QuickHelpEntry{Title: strings.TrimSpace(in.Title), Icon: strings.TrimSpace(in.Icon), Action: strings.TrimSpace(in.Action),
		Text: strings.TrimSpace(in.Text), ArticleSlug: strings.TrimSpace(in.ArticleSlug), Purpose: strings.TrimSpace(in.Purpose),
		Enabled: in.Enabled == nil || *in.Enabled}
	n := utf8.RuneCountInString(e.Title)
	switch _, okAction := quickHelpActions[e.Action]; {
	case n == 0 || n > 20:
		return e, rental.Errorf(op, rental.KindInvalid, "标题须为 1–20 个字 (title must be 1–20 characters)")
	case !validQuickHelpIcon(e.Icon):
		return e, rental.Errorf(op, rental.KindInvalid, "图标须为一个表情符号或内置图标名（%s） (icon must be an emoji or a built-in name)", strings.Join(QuickHelpIcons, "、"))
	case !okAction:
		return e, rental.Errorf(op, rental.KindInvalid, "动作须为 video、voice、chat 或 article (action must be video, voice, chat or article)")
	case utf8.RuneCountInString(e.Text) > 200:
		return e, rental.Errorf(op, rental.KindInvalid, "预设文字最多 200 字 (text is at most 200 characters)")
	case !quickHelpPurposes[e.Purpose]:
		return e, rental.Errorf(op, rental.KindInvalid, "未知的通话目的 %q (unknown call purpose)", e.Purpose)
	}
	switch e.Action {
	case "article":
		if e.ArticleSlug == "" {
			return e, rental.Errorf(op, rental.KindInvalid, "文章类须填写知识库条目编号 (article_slug is required for an article)")
		}
		if _, err := h.q.DB.KBEntry(c.UserContext(), e.ArticleSlug); rental.ErrorKind(err) == rental.KindNotFound {
			return e, rental.Errorf(op, rental.KindInvalid, "知识库里没有条目 %q (no knowledge-base entry %q)", e.ArticleSlug, e.ArticleSlug)
		} else if err != nil {
			return e, err
		}
		e.Purpose = ""
	case "chat":
		e.ArticleSlug, e.Purpose = "", ""
	default:
		e.ArticleSlug = ""
	}
	return e, nil
}

func (h *quickHelpHandlers) create(c *fiber.Ctx) error {
	e, err := h.entry(c)
	if err != nil {
		return err
	}
	if err := h.q.DB.CreateQuickHelp(c.UserContext(), &e); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"entry": e})
}

func (h *quickHelpHandlers) update(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	e, err := h.entry(c)
	if err != nil {
		return err
	}
	e.ID = id
	if err := h.q.DB.UpdateQuickHelp(c.UserContext(), &e); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entry": e})
}

func (h *quickHelpHandlers) remove(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	if err := h.q.DB.DeleteQuickHelp(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *quickHelpHandlers) reorder(c *fiber.Ctx) error {
	var in struct {
		IDs []int64 `json:"ids"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if err := h.q.DB.ReorderQuickHelp(c.UserContext(), in.IDs); err != nil {
		return err
	}
	return h.ownerList(c)
}
