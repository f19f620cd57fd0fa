package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// The owner's knowledge base for the assistant, and the assistant's record:
//
//	GET    /api/v1/owner/kb                  entries by id (?after=<id>&limit=)
//	POST   /api/v1/owner/kb                  create an entry
//	GET    /api/v1/owner/kb/export           the whole KB as a YAML file (the import format)
//	POST   /api/v1/owner/kb/import           import a YAML file (body, or multipart "file"); ?replace=true deletes what the file lacks
//	POST   /api/v1/owner/kb/ask              try a question: the assistant's answer, sources and confidence
//	GET    /api/v1/owner/kb/:id              one entry
//	PUT    /api/v1/owner/kb/:id              replace an entry
//	DELETE /api/v1/owner/kb/:id              delete an entry
//	GET    /api/v1/owner/assistant/records   answers and handoffs, newest first (?outcome=&handoff=true&before=&limit=)
//	GET    /api/v1/owner/assistant/stats     counts and the share not resolved (?days=7)
//
// Every change rebuilds this instance's index at once; other instances
// pick it up through SyncKnowledge.

// Knowledge configures the knowledge-base routes.
type Knowledge struct {
	DB *store.DB
	// Assistant, when set, is reloaded after every change and answers
	// /owner/kb/ask.
	Assistant *assistant.Assistant
	Logger    *slog.Logger
}

// MountKnowledge adds the knowledge-base and assistant-record routes. It
// needs the identity routes (owner login) mounted first.
func (s *Server) MountKnowledge(k *Knowledge) {
	if s.auth == nil {
		panic("gateway: MountKnowledge needs Options.Identity (owner login)")
	}
	if k.Logger == nil {
		k.Logger = s.logger
	}
	h := &kbHandlers{k: k}
	// The fixed paths first: they would otherwise read as an entry id.
	s.api("GET", "/owner/kb", ownerOnly, h.list)
	s.api("POST", "/owner/kb", ownerOnly, h.create)
	s.api("GET", "/owner/kb/export", ownerOnly, h.export)
	s.api("POST", "/owner/kb/import", ownerOnly, h.importFile)
	s.api("POST", "/owner/kb/ask", ownerOnly, h.ask)
	s.api("GET", "/owner/kb/:id", ownerOnly, h.get)
	s.api("PUT", "/owner/kb/:id", ownerOnly, h.update)
	s.api("DELETE", "/owner/kb/:id", ownerOnly, h.remove)
	s.api("GET", "/owner/assistant/records", ownerOnly, h.records)
	s.api("GET", "/owner/assistant/stats", ownerOnly, h.stats)
}

// reservedIDs are the fixed paths under /owner/kb/.
var reservedIDs = map[string]bool{"export": true, "import": true, "ask": true}

type kbHandlers struct{ k *Knowledge }

func toEntry(e store.KBEntry) assistant.Entry {
	return assistant.Entry{ID: e.Slug, Kind: assistant.EntryKind(e.Kind), Title: e.Title, Questions: e.Questions,
		Answer: e.Answer, Tags: e.Tags, Enabled: e.Enabled, UpdatedAt: e.UpdatedAt}
}

func fromEntry(e assistant.Entry) store.KBEntry {
	return store.KBEntry{Slug: e.ID, Kind: string(e.Kind), Title: e.Title, Questions: e.Questions, Answer: e.Answer,
		Tags: e.Tags, Enabled: e.Enabled}
}

type entryView struct {
	assistant.Entry
	UpdatedAt time.Time `json:"updated_at"`
}

func viewEntry(e store.KBEntry) entryView {
	v := entryView{Entry: toEntry(e), UpdatedAt: e.UpdatedAt.In(rental.Shanghai())}
	if v.Questions == nil {
		v.Questions = []string{}
	}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	return v
}

// entryInput is an entry as the console sends it; enabled defaults to true.
type entryInput struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	Title     string   `json:"title"`
	Questions []string `json:"questions"`
	Answer    string   `json:"answer"`
	Tags      []string `json:"tags"`
	Enabled   *bool    `json:"enabled"`
}

func (in entryInput) entry() (assistant.Entry, error) {
	e := assistant.Entry{ID: in.ID, Kind: assistant.EntryKind(in.Kind), Title: in.Title, Questions: in.Questions,
		Answer: in.Answer, Tags: in.Tags, Enabled: in.Enabled == nil || *in.Enabled}
	if err := e.Validate(); err != nil {
		return e, err
	}
	if reservedIDs[e.ID] {
		return e, rental.Errorf("kb.entry", rental.KindInvalid, "编号 %q 是保留字，请换一个 (id is reserved)", e.ID)
	}
	return e, nil
}

// reload rebuilds this instance's index after a change. A failure is
// logged: the change is stored, and SyncKnowledge retries.
func (h *kbHandlers) reload(ctx context.Context) {
	if h.k.Assistant == nil {
		return
	}
	if err := LoadKnowledge(ctx, h.k.DB, h.k.Assistant); err != nil {
		h.k.Logger.Warn("knowledge base stored but not reloaded", "error", err)
	}
}

func (h *kbHandlers) list(c *fiber.Ctx) error {
	limit := min(max(c.QueryInt("limit", 50), 1), 200)
	rows, err := h.k.DB.KBEntries(c.UserContext(), store.KBFilter{After: c.Query("after"), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]entryView, len(rows))
	for i, r := range rows {
		out[i] = viewEntry(r)
	}
	next := ""
	if len(rows) == limit {
		next = rows[len(rows)-1].Slug
	}
	return c.JSON(fiber.Map{"entries": out, "next_cursor": next})
}

func (h *kbHandlers) get(c *fiber.Ctx) error {
	e, err := h.k.DB.KBEntry(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(viewEntry(e))
}

func (h *kbHandlers) create(c *fiber.Ctx) error {
	var in entryInput
	if err := body(c, &in); err != nil {
		return err
	}
	e, err := in.entry()
	if err != nil {
		return err
	}
	row := fromEntry(e)
	if err := h.k.DB.CreateKBEntry(c.UserContext(), &row); err != nil {
		return err
	}
	h.reload(c.UserContext())
	return c.Status(fiber.StatusCreated).JSON(viewEntry(row))
}

func (h *kbHandlers) update(c *fiber.Ctx) error {
	var in entryInput
	if err := body(c, &in); err != nil {
		return err
	}
	id := strings.Clone(c.Params("id"))
	if in.ID != "" && in.ID != id {
		return rental.Errorf("kb.update", rental.KindInvalid, "不能修改编号；请新建一条再删除旧的 (the id cannot change: %q ≠ %q)", in.ID, id)
	}
	in.ID = id
	e, err := in.entry()
	if err != nil {
		return err
	}
	row := fromEntry(e)
	if err := h.k.DB.UpdateKBEntry(c.UserContext(), &row); err != nil {
		return err
	}
	h.reload(c.UserContext())
	saved, err := h.k.DB.KBEntry(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(viewEntry(saved))
}

func (h *kbHandlers) remove(c *fiber.Ctx) error {
	if err := h.k.DB.DeleteKBEntry(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	h.reload(c.UserContext())
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *kbHandlers) export(c *fiber.Ctx) error {
	rows, err := h.k.DB.AllKBEntries(c.UserContext())
	if err != nil {
		return err
	}
	entries := make([]assistant.Entry, len(rows))
	for i, r := range rows {
		entries[i] = toEntry(r)
	}
	raw, err := assistant.MarshalKnowledge(entries)
	if err != nil {
		return err
	}
	name := "knowledge-" + time.Now().In(rental.Shanghai()).Format("20060102") + ".yaml"
	c.Set(fiber.HeaderContentType, "application/yaml; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	return c.Send(raw)
}

func (h *kbHandlers) importFile(c *fiber.Ctx) error {
	const op = "kb.import"
	var r io.Reader = bytes.NewReader(c.Body())
	if strings.HasPrefix(c.Get(fiber.HeaderContentType), fiber.MIMEMultipartForm) {
		fh, err := c.FormFile("file")
		if err != nil {
			return rental.Wrap(op, rental.KindInvalid, "请上传 file 字段 (multipart field \"file\" is required)", err)
		}
		f, err := fh.Open()
		if err != nil {
			return rental.Wrap(op, rental.KindInvalid, "无法读取上传的文件 (cannot read the upload)", err)
		}
		defer f.Close()
		r = f
	}
	entries, err := assistant.ParseKnowledge(r)
	if err != nil {
		return err
	}
	rows := make([]store.KBEntry, len(entries))
	for i, e := range entries {
		if reservedIDs[e.ID] {
			return rental.Errorf(op, rental.KindInvalid, "第 %d 条：编号 %q 是保留字 (entry %d: id is reserved)", i+1, e.ID, i+1)
		}
		rows[i] = fromEntry(e)
	}
	rep, err := h.k.DB.ImportKB(c.UserContext(), rows, c.QueryBool("replace", false))
	if err != nil {
		return err
	}
	h.reload(c.UserContext())
	return c.JSON(rep)
}

func (h *kbHandlers) ask(c *fiber.Ctx) error {
	const op = "kb.ask"
	if h.k.Assistant == nil {
		return rental.Errorf(op, rental.KindUnavailable, "智能客服未启用 (the assistant is off)")
	}
	var in struct {
		Question string `json:"question"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Question) == "" {
		return rental.Errorf(op, rental.KindInvalid, "请输入问题 (question is required)")
	}
	ans, err := h.k.Assistant.Answer(c.UserContext(), assistant.Question{Text: strings.Clone(in.Question)}, nil)
	if err != nil {
		return err
	}
	sources := ans.Sources
	if sources == nil {
		sources = []assistant.Source{}
	}
	return c.JSON(fiber.Map{
		"kind": ans.Kind, "text": ans.Text, "confidence": ans.Confidence, "threshold": h.k.Assistant.Threshold(),
		"sources": sources, "handoff": ans.Handoff, "phrased": ans.Phrased, "model_error": ans.ModelError,
	})
}

type recordView struct {
	ID           int64      `json:"id"`
	Conversation string     `json:"conversation"`
	Question     string     `json:"question"`
	Answer       string     `json:"answer"`
	Kind         string     `json:"kind"`
	Sources      []string   `json:"sources"`
	Confidence   float64    `json:"confidence"`
	Phrased      bool       `json:"phrased"`
	Handoff      string     `json:"handoff,omitempty"`
	Outcome      string     `json:"outcome"`
	OutcomeBy    string     `json:"outcome_by,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
}

func (h *kbHandlers) records(c *fiber.Ctx) error {
	limit := min(max(c.QueryInt("limit", 50), 1), 200)
	outcome := c.Query("outcome")
	switch outcome {
	case "", store.OutcomePending, store.OutcomeResolved, store.OutcomeUnresolved:
	default:
		return rental.Errorf("kb.records", rental.KindInvalid, "outcome 只能是 pending、resolved 或 unresolved (got %q)", outcome)
	}
	rows, err := h.k.DB.AnswerRecords(c.UserContext(), store.AnswerFilter{Outcome: outcome, Handoff: c.QueryBool("handoff", false),
		Before: int64(c.QueryInt("before", 0)), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]recordView, len(rows))
	for i, r := range rows {
		v := recordView{ID: r.ID, Conversation: r.Conversation, Question: r.Question, Answer: r.Answer, Kind: r.Kind, Sources: r.Sources,
			Confidence: r.Confidence, Phrased: r.Phrased, Handoff: r.Handoff, Outcome: r.Outcome, OutcomeBy: r.OutcomeBy,
			CreatedAt: r.CreatedAt.In(rental.Shanghai())}
		if r.DecidedAt != nil {
			t := r.DecidedAt.In(rental.Shanghai())
			v.DecidedAt = &t
		}
		if v.Sources == nil {
			v.Sources = []string{}
		}
		out[i] = v
	}
	next := ""
	if len(rows) == limit {
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"records": out, "next_cursor": next})
}

func (h *kbHandlers) stats(c *fiber.Ctx) error {
	days := c.QueryInt("days", 7)
	if days < 1 || days > 366 {
		return rental.Errorf("kb.stats", rental.KindInvalid, "days 应在 1 到 366 之间 (days must be 1–366)")
	}
	since := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
	st, err := h.k.DB.AnswerStats(c.UserContext(), since)
	if err != nil {
		return err
	}
	// The share the assistant could not resolve, of the turns with a
	// signal either way; null until there is one.
	var share *float64
	if n := st.Resolved + st.Unresolved; n > 0 {
		v := float64(st.Unresolved) / float64(n)
		share = &v
	}
	return c.JSON(fiber.Map{"since": since.In(rental.Shanghai()), "days": days, "stats": st, "unresolved_share": share})
}

// LoadKnowledge reads the knowledge base into the assistant.
func LoadKnowledge(ctx context.Context, db *store.DB, a *assistant.Assistant) error {
	rows, err := db.AllKBEntries(ctx)
	if err != nil {
		return err
	}
	entries := make([]assistant.Entry, len(rows))
	for i, r := range rows {
		entries[i] = toEntry(r)
	}
	a.SetKnowledge(entries)
	return nil
}

// SeedKnowledge imports the demo shop's knowledge base when the database has
// none, for `tacklegate demo`. It reports whether it did.
func SeedKnowledge(ctx context.Context, db *store.DB) (bool, error) {
	have, err := db.KBEntries(ctx, store.KBFilter{Limit: 1})
	if err != nil || len(have) > 0 {
		return false, err
	}
	demo := assistant.DemoKnowledge()
	rows := make([]store.KBEntry, len(demo))
	for i, e := range demo {
		rows[i] = fromEntry(e)
	}
	_, err = db.ImportKB(ctx, rows, false)
	return err == nil, err
}

// SyncKnowledge reloads the assistant whenever the knowledge base changes
// (another instance's owner edit), checking every interval until ctx ends.
func SyncKnowledge(ctx context.Context, db *store.DB, a *assistant.Assistant, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seen := ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v, err := db.KBVersion(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("knowledge base version check failed", "error", err)
		case err == nil && v != seen:
			if err := LoadKnowledge(ctx, db, a); err != nil {
				if ctx.Err() == nil {
					log.Warn("knowledge base reload failed", "error", err)
				}
			} else {
				seen = v
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AnswerRecords stores the assistant's records in the database: the
// assistant.RecordStore the Desk needs.
type AnswerRecords struct{ DB *store.DB }

var _ assistant.RecordStore = AnswerRecords{}

// AddRecord implements assistant.RecordStore.
func (s AnswerRecords) AddRecord(ctx context.Context, r *assistant.Record) error {
	row := store.AnswerRecord{Conversation: r.Conversation, Question: r.Question, Answer: r.Answer, Kind: string(r.Kind),
		Sources: r.Sources, Confidence: r.Confidence, Phrased: r.Phrased, ModelError: r.ModelError, Handoff: string(r.Handoff),
		Outcome: string(r.Outcome), OutcomeBy: string(r.OutcomeBy), CreatedAt: r.CreatedAt}
	if !r.DecidedAt.IsZero() {
		t := r.DecidedAt
		row.DecidedAt = &t
	}
	if err := s.DB.AddAnswerRecord(ctx, &row); err != nil {
		return err
	}
	r.ID = row.ID
	return nil
}

// SetOutcome implements assistant.RecordStore.
func (s AnswerRecords) SetOutcome(ctx context.Context, id int64, o assistant.Outcome, by assistant.OutcomeBy, at time.Time) error {
	return s.DB.SetAnswerOutcome(ctx, id, string(o), string(by), at)
}
