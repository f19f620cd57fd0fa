package assistant

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tacklegate/tacklegate/rental"
)

// EntryKind says how an entry reads: a Q&A answers one question; an article
// is a longer text (a how-to) found by its title and body.
type EntryKind string

const (
	KindQA      EntryKind = "qa"
	KindArticle EntryKind = "article"
)

// Entry is one piece of the shop's knowledge.
type Entry struct {
	// ID is a stable slug ("deposit-refund"): import matches on it, answer
	// records and the evaluation set cite it.
	ID        string    `json:"id" yaml:"id"`
	Kind      EntryKind `json:"kind" yaml:"kind,omitempty"`
	Title     string    `json:"title" yaml:"title"`
	Questions []string  `json:"questions" yaml:"questions,omitempty"`
	Answer    string    `json:"answer" yaml:"answer"`
	Tags      []string  `json:"tags" yaml:"tags,omitempty,flow"`
	Enabled   bool      `json:"enabled" yaml:"-"`
	UpdatedAt time.Time `json:"updated_at,omitzero" yaml:"-"`
}

// Limits on entries, so that one careless import cannot blow up the index or
// a chat bubble.
const (
	maxTitle     = 100
	maxAnswer    = 4000
	maxQuestions = 30
	maxQuestion  = 200
	maxTags      = 20
	maxEntries   = 5000
)

var reEntryID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Validate checks an entry and tidies it: trims text, drops empty or
// repeated questions and tags, defaults the kind.
func (e *Entry) Validate() error {
	const op = "assistant.Entry.Validate"
	e.ID = strings.TrimSpace(e.ID)
	e.Title = strings.TrimSpace(e.Title)
	e.Answer = strings.TrimSpace(e.Answer)
	if e.Kind == "" {
		e.Kind = KindQA
	}
	e.Questions = tidy(e.Questions)
	e.Tags = tidy(e.Tags)
	switch {
	case !reEntryID.MatchString(e.ID):
		return rental.Errorf(op, rental.KindInvalid, "编号只能用小写字母、数字和短横线，最长 64 个字符 (id must match %s): %q", reEntryID, e.ID)
	case e.Kind != KindQA && e.Kind != KindArticle:
		return rental.Errorf(op, rental.KindInvalid, "%s: 类型只能是 qa 或 article (kind must be qa or article): %q", e.ID, e.Kind)
	case e.Title == "":
		return rental.Errorf(op, rental.KindInvalid, "%s: 请填写标题 (title is required)", e.ID)
	case utf8.RuneCountInString(e.Title) > maxTitle:
		return rental.Errorf(op, rental.KindInvalid, "%s: 标题最多 %d 个字 (title is at most %d characters)", e.ID, maxTitle, maxTitle)
	case e.Answer == "":
		return rental.Errorf(op, rental.KindInvalid, "%s: 请填写回答 (answer is required)", e.ID)
	case utf8.RuneCountInString(e.Answer) > maxAnswer:
		return rental.Errorf(op, rental.KindInvalid, "%s: 回答最多 %d 个字 (answer is at most %d characters)", e.ID, maxAnswer, maxAnswer)
	case len(e.Questions) > maxQuestions:
		return rental.Errorf(op, rental.KindInvalid, "%s: 最多 %d 个问法 (at most %d question variants)", e.ID, maxQuestions, maxQuestions)
	case len(e.Tags) > maxTags:
		return rental.Errorf(op, rental.KindInvalid, "%s: 最多 %d 个标签 (at most %d tags)", e.ID, maxTags, maxTags)
	}
	for _, q := range e.Questions {
		if utf8.RuneCountInString(q) > maxQuestion {
			return rental.Errorf(op, rental.KindInvalid, "%s: 问法最多 %d 个字 (a question is at most %d characters)", e.ID, maxQuestion, maxQuestion)
		}
	}
	return nil
}

func tidy(in []string) []string {
	out := in[:0:0]
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// The knowledge-base file: YAML, UTF-8, the format of import and export.
//
//	version: 1
//	entries:
//	  - id: deposit-refund          # a–z, 0–9 and "-", unique; import updates the entry with this id
//	    kind: qa                    # qa (default) or article
//	    title: 押金怎么退            # the main question, or the article's title
//	    questions:                  # other ways customers ask it (optional)
//	      - 押金什么时候退
//	    answer: |                   # what the customer is told; {营业时间} {逾期费} {宽限期} {免押会员}
//	      归还装备后……               # are filled in from the shop's settings
//	    tags: [押金, 退款]           # optional
//	    enabled: false              # optional; entries are enabled unless this says false
type knowledgeFile struct {
	Version int         `yaml:"version"`
	Entries []fileEntry `yaml:"entries"`
}

type fileEntry struct {
	Entry   `yaml:",inline"`
	Enabled *bool `yaml:"enabled,omitempty"`
}

// KnowledgeFileVersion is the version written by MarshalKnowledge.
const KnowledgeFileVersion = 1

// ParseKnowledge reads a knowledge-base file. Every entry is validated; the
// error names the first bad one. Repeated ids are an error.
func ParseKnowledge(r io.Reader) ([]Entry, error) {
	const op = "assistant.ParseKnowledge"
	raw, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "读取知识库文件失败 (cannot read the file)", err)
	}
	var f knowledgeFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "知识库文件不是有效的 YAML (not a valid knowledge-base file): "+err.Error(), err)
	}
	if f.Version > KnowledgeFileVersion {
		return nil, rental.Errorf(op, rental.KindInvalid, "不支持的知识库文件版本 %d (unsupported version; this build reads up to %d)", f.Version, KnowledgeFileVersion)
	}
	if len(f.Entries) > maxEntries {
		return nil, rental.Errorf(op, rental.KindInvalid, "一次最多导入 %d 条 (at most %d entries)", maxEntries, maxEntries)
	}
	out := make([]Entry, 0, len(f.Entries))
	seen := map[string]int{}
	for i, fe := range f.Entries {
		e := fe.Entry
		e.Enabled = fe.Enabled == nil || *fe.Enabled
		if err := e.Validate(); err != nil {
			return nil, rental.Wrap(op, rental.KindInvalid, fmt.Sprintf("第 %d 条 (entry %d): %s", i+1, i+1, rental.ErrorMessage(err)), err)
		}
		if j, dup := seen[e.ID]; dup {
			return nil, rental.Errorf(op, rental.KindInvalid, "第 %d 条和第 %d 条的编号重复 (entries %d and %d share id %q)", j+1, i+1, j+1, i+1, e.ID)
		}
		seen[e.ID] = i
		out = append(out, e)
	}
	return out, nil
}

// MarshalKnowledge writes entries as a knowledge-base file that
// ParseKnowledge reads back unchanged.
func MarshalKnowledge(entries []Entry) ([]byte, error) {
	f := knowledgeFile{Version: KnowledgeFileVersion, Entries: make([]fileEntry, len(entries))}
	for i, e := range entries {
		fe := fileEntry{Entry: e}
		if fe.Kind == KindQA {
			fe.Kind = "" // the default; keeps the file short
		}
		if !e.Enabled {
			off := false
			fe.Enabled = &off
		}
		f.Entries[i] = fe
	}
	var b bytes.Buffer
	b.WriteString("# tacklegate knowledge base — edit and import again; entries are matched by id.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, rental.Wrap("assistant.MarshalKnowledge", rental.KindInternal, "", err)
	}
	return b.Bytes(), enc.Close()
}

//go:embed demo_knowledge.yaml
var demoKnowledge []byte

// DemoKnowledge returns the seed knowledge of a tackle-rental shop, in
// Chinese, that `tacklegate demo` loads: mounting and spooling reels, line
// sizes for crucian, carp and sea fishing, rod lengths, deposits, hours,
// pickup and return, late fees, damage, cleaning, cancelling, weather.
func DemoKnowledge() []Entry {
	entries, err := ParseKnowledge(bytes.NewReader(demoKnowledge))
	if err != nil {
		panic("assistant: the embedded demo knowledge is invalid: " + err.Error()) // a test keeps this unreachable
	}
	return entries
}

// Placeholders in answers, filled in from the shop's settings so that the
// knowledge base never contradicts them.
const (
	phHours   = "{营业时间}"
	phLateFee = "{逾期费}"
	phGrace   = "{宽限期}"
	phWaived  = "{免押会员}"
)

// render fills the placeholders of an answer.
func render(answer string, s rental.ShopSettings) string {
	if !strings.Contains(answer, "{") {
		return answer
	}
	return strings.NewReplacer(
		phHours, hoursText(s.Hours),
		phLateFee, yuan(int64(s.LateFeePerDay)),
		phGrace, durationText(s.GracePeriod),
		phWaived, waivedText(s.DepositWaived),
	).Replace(answer)
}

var tierLabels = map[string]string{"gold": "金卡", "silver": "银卡", "platinum": "白金卡", "diamond": "钻石卡", "vip": "VIP"}

func waivedText(tiers map[rental.Tier]bool) string {
	var names []string
	for t, on := range tiers {
		if !on {
			continue
		}
		n := string(t)
		if l, ok := tierLabels[strings.ToLower(n)]; ok {
			n = l
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return "目前暂未开放"
	}
	sort.Strings(names)
	return strings.Join(names, "、")
}

func durationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 小时"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d 天", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d 小时", d/time.Hour)
	}
	return fmt.Sprintf("%d 分钟", d/time.Minute)
}

var weekdayNames = [7]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// hoursText describes opening hours the way a shop sign does: "每天
// 06:00–20:00", or runs of days from Monday with the same hours.
func hoursText(h rental.OpeningHours) string {
	day := func(d rental.DayHours) string {
		if d.Closed {
			return "休息"
		}
		return d.Open.String() + "–" + d.Close.String()
	}
	order := []int{1, 2, 3, 4, 5, 6, 0} // Monday first
	if slices.IndexFunc(order, func(i int) bool { return h[i] != h[1] }) < 0 {
		if h[1].Closed {
			return "暂停营业"
		}
		return "每天 " + day(h[1])
	}
	var parts []string
	for i := 0; i < len(order); {
		j := i
		for j+1 < len(order) && h[order[j+1]] == h[order[i]] {
			j++
		}
		names := weekdayNames[order[i]]
		if j > i {
			names += "至" + weekdayNames[order[j]]
		}
		parts = append(parts, names+" "+day(h[order[i]]))
		i = j + 1
	}
	return strings.Join(parts, "，")
}
