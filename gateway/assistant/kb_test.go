package assistant

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/tacklegate/tacklegate/rental"
)

func TestDemoKnowledge(t *testing.T) {
	entries := DemoKnowledge()
	if len(entries) < 25 {
		t.Fatalf("demo knowledge has %d entries, want at least 25", len(entries))
	}
	ids := map[string]bool{}
	for _, e := range entries {
		ids[e.ID] = true
		if !e.Enabled {
			t.Errorf("%s is disabled in the demo", e.ID)
		}
	}
	// Every entry the evaluation cites exists.
	for _, q := range append(loadEval(t), loadQuestions(t, "testdata/holdout.yaml")...) {
		for _, id := range q.Expect {
			if !strings.HasPrefix(id, "catalog:") && !ids[id] {
				t.Errorf("eval question %q expects unknown entry %q", q.Q, id)
			}
		}
	}
}

func TestKnowledgeFileRoundTrip(t *testing.T) {
	in := DemoKnowledge()
	in[3].Enabled = false
	in[4].Kind = KindArticle
	raw, err := MarshalKnowledge(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseKnowledge(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the entries")
	}
	if !strings.Contains(string(raw), "enabled: false") || strings.Count(string(raw), "enabled:") != 1 {
		t.Errorf("only the disabled entry should say enabled:\n%s", raw)
	}
}

func TestParseKnowledgeErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"entries: [{id: a, title: t}]", "请填写回答"},
		{"entries: [{id: Bad_ID, title: t, answer: a}]", "编号只能用"},
		{"entries: [{id: a, title: t, answer: a}, {id: a, title: u, answer: b}]", "编号重复"},
		{"entries: [{id: a, title: t, answer: a, kind: faq}]", "类型只能是"},
		{"entries: [{id: a, title: t, answer: a, colour: red}]", "not a valid"},
		{"version: 9\nentries: []", "不支持的知识库文件版本"},
		{"entries: {", "不是有效的 YAML"},
	} {
		_, err := ParseKnowledge(strings.NewReader(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) || rental.ErrorKind(err) != rental.KindInvalid {
			t.Errorf("%q: err = %v, want %q (invalid)", tc.file, err, tc.want)
		}
	}
	got, err := ParseKnowledge(strings.NewReader("entries:\n  - {id: x, title: ' T ', answer: A, questions: [q, q, ' '], tags: [a, a]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e := got[0]; e.Title != "T" || len(e.Questions) != 1 || len(e.Tags) != 1 || e.Kind != KindQA || !e.Enabled {
		t.Errorf("entry not tidied: %+v", e)
	}
}

func TestSetKnowledgeSwapsIndex(t *testing.T) {
	a, _ := newTestAssistant(t, func(o *Options) { o.Catalog = nil })
	ask := func(q string) Answer {
		ans, err := a.Answer(t.Context(), Question{Text: q, At: testNow}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := ask("能开发票吗"); ans.Kind != AnswerNone {
		t.Fatalf("before: %+v", ans)
	}
	entries := append(DemoKnowledge(), Entry{ID: "invoice", Title: "能开发票吗", Questions: []string{"发票怎么开"},
		Answer: "可以开电子发票，还装备后在小程序订单里申请。", Enabled: true})
	a.SetKnowledge(entries)
	if ans := ask("能开发票吗"); ans.Kind != AnswerKnowledge || ans.Top() != "invoice" {
		t.Fatalf("after adding: %+v", ans)
	}
	entries[len(entries)-1].Enabled = false
	a.SetKnowledge(entries)
	if ans := ask("能开发票吗"); ans.Kind != AnswerNone {
		t.Fatalf("disabled entry still answers: %+v", ans)
	}
}
