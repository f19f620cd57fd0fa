package assistant

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/rental"
)

// DefaultThreshold is the confidence below which the assistant does not
// answer. Chosen on the evaluation set (testdata/eval.yaml): every
// must-refuse question scores below it, and lowering it further buys no
// accuracy (see doc.go for the numbers).
const DefaultThreshold = 0.36

// Facts gives the shop's current settings, for the answers' placeholders
// (opening hours, late fee, grace period, deposit-free tiers).
// rental.CatalogStore (the store) has this method.
type Facts interface {
	ShopSettings(ctx context.Context) (rental.ShopSettings, error)
}

// Model is the optional language model that phrases answers; *llm.Client
// implements it.
type Model interface {
	// Stream writes a completion, calling onDelta with each piece.
	Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Completion, error)
	// CanSee reports whether image questions can be sent.
	CanSee() bool
}

var _ Model = (*llm.Client)(nil)

// Options configure an Assistant. Everything is optional: with no catalog
// the assistant answers from the knowledge base only, with no model from
// retrieval only.
type Options struct {
	Catalog   Catalog
	Facts     Facts
	Model     Model
	PublicURL string // base of reserve links: {PublicURL}/items/{id}
	// Threshold is the confidence an answer needs; 0 means DefaultThreshold.
	Threshold float64
	// CatalogTTL is how long the catalog snapshot used for matching is
	// reused; 0 means 30 seconds. Availability is always read live.
	CatalogTTL time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Assistant answers customers' questions from the knowledge base and the
// live catalog. It is safe for concurrent use.
type Assistant struct {
	lx   *lexicon
	opts Options
	log  *slog.Logger
	kb   atomic.Pointer[kbIndex]

	cat     atomic.Pointer[catalogSnapshot]
	refresh sync.Mutex // one catalog refresh at a time

	mu      sync.Mutex // guards the settings below
	facts   rental.ShopSettings
	factsAt time.Time
}

// catalogSnapshot is the catalog as last read, analysed for matching.
type catalogSnapshot struct {
	items    []CatalogItem
	analyses []analysis // of each item's name, tags, category and description
	tags     map[string]bool
	at       time.Time
}

// New builds an assistant over the given entries (disabled ones are
// skipped).
func New(entries []Entry, opts Options) (*Assistant, error) {
	lx, err := sharedLexicon()
	if err != nil {
		return nil, rental.Wrap("assistant.New", rental.KindInternal, "", err)
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	if opts.CatalogTTL == 0 {
		opts.CatalogTTL = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Assistant{lx: lx, opts: opts, log: opts.Logger.With("component", "assistant")}
	a.SetKnowledge(entries)
	return a, nil
}

// SetKnowledge replaces the knowledge base. Answers in progress finish with
// the old one.
func (a *Assistant) SetKnowledge(entries []Entry) {
	a.kb.Store(buildIndex(a.lx, entries))
}

// Threshold is the confidence an answer needs.
func (a *Assistant) Threshold() float64 { return a.opts.Threshold }

// HasModel reports whether a language model is configured.
func (a *Assistant) HasModel() bool { return a.opts.Model != nil }

// Question is what a customer asked.
type Question struct {
	Text  string
	Image *llm.Image // a photo, when the customer sent one
	At    time.Time  // when it was asked; zero means now
}

// AnswerKind says where an answer came from.
type AnswerKind string

const (
	AnswerKnowledge AnswerKind = "kb"      // a knowledge-base entry
	AnswerCatalog   AnswerKind = "catalog" // items from the live catalog
	AnswerNone      AnswerKind = "none"    // nothing good enough: a person should answer
)

// Source is one piece of what an answer rests on.
type Source struct {
	Kind       string  `json:"kind"` // "kb" or "item"
	ID         string  `json:"id"`   // entry id or item id
	Title      string  `json:"title"`
	Confidence float64 `json:"confidence"`
}

// Answer is the assistant's reply to one question.
type Answer struct {
	Kind AnswerKind
	// Text is what to send; empty when Kind is AnswerNone.
	Text string
	// Confidence is in [0, 1]; below the threshold Kind is AnswerNone.
	Confidence float64
	Sources    []Source // best first
	// Period is the days the question asked about, when it named any.
	Period rental.Period
	Dated  bool
	// Phrased is set when the language model wrote Text. When it was asked
	// but failed (timeout, error, refusal), ModelError says why and Text is
	// the retrieval answer; a UI that streamed deltas replaces them with Text.
	Phrased    bool
	ModelError string
	// Handoff says why a person should answer, when Kind is AnswerNone.
	Handoff HandoffReason
}

// Top returns the id of the best source ("" when none): the entry or item
// the answer is mainly about.
func (ans Answer) Top() string {
	if len(ans.Sources) == 0 {
		return ""
	}
	return ans.Sources[0].ID
}

const (
	maxItemsShown    = 5
	strongKnowledge  = 0.75 // a knowledge entry this sure beats a vague catalog cue
	catalogConfident = 0.9
)

// Answer answers q. onDelta, when not nil, receives the language model's
// text as it is written (nothing is streamed without a model). The error is
// only for a failing catalog or settings source; a failing model falls back
// to the retrieval answer.
func (a *Assistant) Answer(ctx context.Context, q Question, onDelta func(string)) (Answer, error) {
	now := q.At
	if now.IsZero() {
		now = a.opts.Now()
	}
	set := a.settings(ctx)
	norm := normalize(q.Text)
	period, rest, dated := parsePeriod(norm, now)
	if !dated {
		today := rental.DateOf(now)
		period = rental.Period{From: today, To: today.AddDays(1)}
	}
	toks := a.lx.tokens(rest)
	an := a.lx.analyzeTokens(toks)
	ix := a.kb.Load()
	hits := ix.search(an, 3)
	kbConf := 0.0
	if len(hits) > 0 {
		kbConf = hits[0].confidence
	}

	ans := Answer{Kind: AnswerNone, Period: period, Dated: dated, Handoff: ReasonLowConfidence}
	for _, h := range hits {
		ans.Sources = append(ans.Sources, Source{Kind: "kb", ID: ix.entries[h.entry].ID, Title: ix.entries[h.entry].Title, Confidence: round(h.confidence)})
	}
	ans.Confidence = round(kbConf)

	var (
		items   []catalogHit
		suggest string
	)
	if a.opts.Catalog != nil {
		snapshot, catErr := a.catalog(ctx)
		if catErr != nil {
			// Knowledge questions are still answered while the catalog is
			// down; a catalog question fails below, and a person takes it.
			a.log.Warn("catalog unavailable", "error", catErr)
			snapshot = &catalogSnapshot{tags: map[string]bool{}}
			for _, t := range builtinTags {
				snapshot.tags[t] = true
			}
		}
		ci := detectIntent(norm, an.words, snapshot.tags, dated)
		asks := ci.have || ci.price || ci.dated
		advice := ci.advice && len(ci.tags) > 0
		switch {
		case catErr != nil && (ci.product() && (asks || advice) || ci.browse == 2):
			return Answer{}, catErr
		case !ci.product() && len(snapshot.items) > 0 && (ci.browse == 2 || ci.browse == 1 && kbConf < strongKnowledge):
			// What the shop rents at all.
			ans.Kind, ans.Handoff, ans.Sources = AnswerCatalog, "", nil
			ans.Confidence = 0.8
			ans.Text = overviewText(snapshot.items)
		case ci.product() && asks && !(kbConf >= strongKnowledge && len(ci.tags) == 0),
			ci.product() && advice && kbConf < a.opts.Threshold:
			// What the shop has: the catalog answers.
			items = a.rankItems(snapshot, ci, an)
			if err := a.fillAvailability(ctx, items, period); err != nil {
				return Answer{}, err
			}
			ans = a.catalogAnswer(ans, items, ci, period)
		case ci.product() && advice:
			// Advice the knowledge base gives, with the items that fit.
			items = a.rankItems(snapshot, ci, an)
			if len(items) > 3 {
				items = items[:3]
			}
			if err := a.fillAvailability(ctx, items, period); err != nil {
				return Answer{}, err
			}
			suggest = suggestionText(items, ci, period, a.opts.PublicURL)
		}
	}

	if ans.Kind == AnswerNone && len(hits) > 0 && kbConf >= a.opts.Threshold {
		e := ix.entries[hits[0].entry]
		ans.Kind, ans.Handoff = AnswerKnowledge, ""
		ans.Text = render(e.Answer, set)
		if suggest != "" && len(items) > 0 {
			ans.Text += suggest
			for _, h := range items {
				ans.Sources = append(ans.Sources, Source{Kind: "item", ID: itemID(h.item.ID), Title: h.item.Name, Confidence: round(h.score)})
			}
		}
	}

	if q.Image != nil {
		return a.answerImage(ctx, q, ans, ix, hits, items, set, onDelta)
	}
	if ans.Kind == AnswerNone || a.opts.Model == nil {
		return ans, nil
	}
	return a.phrase(ctx, q, ans, ix, hits, items, set, onDelta)
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// catalogAnswer turns ranked items into the answer.
func (a *Assistant) catalogAnswer(ans Answer, items []catalogHit, ci catalogIntent, p rental.Period) Answer {
	if len(items) == 0 {
		// An honest "no" is an answer; the entries that came up are not
		// what it rests on.
		ans.Kind, ans.Handoff, ans.Sources = AnswerCatalog, "", nil
		ans.Confidence = a.opts.Threshold
		ans.Text = "店里暂时没有" + wantedText(ci) + "可以出租。想找替代的装备，可以回复“人工”让店员帮您看看。"
		return ans
	}
	ans.Kind, ans.Handoff = AnswerCatalog, ""
	ans.Confidence = catalogConfident
	if len(ci.tags) == 0 {
		ans.Confidence = 0.7
	}
	src := make([]Source, 0, len(items)+len(ans.Sources))
	for _, h := range items {
		src = append(src, Source{Kind: "item", ID: itemID(h.item.ID), Title: h.item.Name, Confidence: round(h.score)})
	}
	ans.Sources = append(src, ans.Sources...)
	ans.Text = catalogText(items, ci, p, a.opts.PublicURL)
	return ans
}

func itemID(id rental.ItemID) string { return "item-" + strconv.FormatInt(int64(id), 10) }

// rankItems picks the items a catalog question is about: those with any of
// the asked tags (else of the asked category), ranked by BM25 of the
// question over name, tags, category and description, more matching tags
// first.
func (a *Assistant) rankItems(snap *catalogSnapshot, ci catalogIntent, an analysis) []catalogHit {
	var cands []int
	tagHits := map[int]int{}
	for i, it := range snap.items {
		n := 0
		for _, t := range it.Tags {
			if slices.Contains(ci.tags, a.canonical(t)) {
				n++
			}
		}
		switch {
		case len(ci.tags) > 0 && n == 0:
			continue
		case len(ci.tags) > 0 && ci.category != "" && it.Category != ci.category && !tagIsCategory(ci.tags, it.Category):
			continue
		case len(ci.tags) == 0 && it.Category != ci.category:
			continue
		}
		tagHits[i] = n
		cands = append(cands, i)
	}
	if len(cands) == 0 {
		return nil
	}
	fw, fg := newField(), newField()
	for _, i := range cands {
		fw.add(snap.analyses[i].words)
		fg.add(snap.analyses[i].grams)
	}
	fw.finish()
	fg.finish()
	sw, sg := make([]float64, len(cands)), make([]float64, len(cands))
	fw.normalized(an.words, sw)
	fg.normalized(an.grams, sg)
	hits := make([]catalogHit, len(cands))
	for j, i := range cands {
		hits[j] = catalogHit{item: snap.items[i], score: float64(tagHits[i]) + wordWeight*sw[j] + (1-wordWeight)*sg[j]}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	if len(hits) > maxItemsShown {
		hits = hits[:maxItemsShown]
	}
	return hits
}

// tagIsCategory: a tag that names a kind of gear (纺车轮) satisfies the
// category it belongs to.
func tagIsCategory(tags []string, c rental.Category) bool {
	for _, t := range tags {
		if categoryWords[t] == c {
			return true
		}
	}
	return false
}

// canonical folds a tag or name through the synonym table.
func (a *Assistant) canonical(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if c, ok := a.lx.canon[s]; ok {
		return c
	}
	return s
}

// fillAvailability reads live availability for the shown items. A failure
// for one item shows "以下单页为准" rather than failing the answer.
func (a *Assistant) fillAvailability(ctx context.Context, items []catalogHit, p rental.Period) error {
	for i := range items {
		n, err := a.opts.Catalog.Free(ctx, items[i].item.ID, p)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.log.Warn("availability failed", "item", items[i].item.ID, "error", err)
			items[i].err = err
			continue
		}
		items[i].free = n
	}
	return nil
}

// catalog returns the catalog snapshot, read again every CatalogTTL. Readers
// never wait for each other; one refresh runs at a time.
func (a *Assistant) catalog(ctx context.Context) (*catalogSnapshot, error) {
	fresh := func(s *catalogSnapshot) bool { return s != nil && a.opts.Now().Sub(s.at) < a.opts.CatalogTTL }
	if s := a.cat.Load(); fresh(s) {
		return s, nil
	}
	a.refresh.Lock()
	defer a.refresh.Unlock()
	old := a.cat.Load()
	if fresh(old) {
		return old, nil // refreshed while we waited
	}
	items, err := a.opts.Catalog.CatalogItems(ctx, nil, "", 500)
	if err != nil {
		if old != nil { // serve the stale snapshot rather than fail the customer
			a.log.Warn("catalog refresh failed; using the previous snapshot", "error", err)
			return old, nil
		}
		return nil, err
	}
	s := &catalogSnapshot{items: items, analyses: make([]analysis, len(items)), tags: map[string]bool{}, at: a.opts.Now()}
	for _, t := range builtinTags {
		s.tags[t] = true
	}
	for i, it := range items {
		for _, t := range it.Tags {
			s.tags[a.canonical(t)] = true
		}
		s.analyses[i] = a.lx.analyze(it.Name + " " + strings.Join(it.Tags, " ") + " " + it.Category.Label() + " " + it.Description)
	}
	a.cat.Store(s)
	return s, nil
}

// InvalidateCatalog makes the next question read the catalog again (call it
// after the owner edits items).
func (a *Assistant) InvalidateCatalog() { a.cat.Store(nil) }

// settings returns the shop's settings, cached for a minute; defaults when
// no source is configured or it fails.
func (a *Assistant) settings(ctx context.Context) rental.ShopSettings {
	if a.opts.Facts == nil {
		return rental.DefaultShopSettings()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now()
	if !a.factsAt.IsZero() && now.Sub(a.factsAt) < time.Minute {
		return a.facts
	}
	s, err := a.opts.Facts.ShopSettings(ctx)
	if err != nil {
		a.log.Warn("shop settings unavailable; answering with the last known or defaults", "error", err)
		if a.factsAt.IsZero() {
			return rental.DefaultShopSettings()
		}
		return a.facts
	}
	a.facts, a.factsAt = s, now
	return s
}

// isCancel reports whether err is the caller's cancel (the customer wrote
// again), which must not be reported as a model failure.
func isCancel(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) && ctx.Err() != nil
}
