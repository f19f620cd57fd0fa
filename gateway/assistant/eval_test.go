package assistant

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

type evalQuestion struct {
	Q       string   `yaml:"q"`
	Expect  []string `yaml:"expect"`
	Catalog string   `yaml:"catalog"`
	Refuse  bool     `yaml:"refuse"`
}

func loadEval(t testing.TB) []evalQuestion { return loadQuestions(t, "testdata/eval.yaml") }

func loadQuestions(t testing.TB, path string) []evalQuestion {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Questions []evalQuestion `yaml:"questions"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f.Questions
}

// correct reports whether ans answers q as expected: its top source is one
// of the expected entries, or it is a catalog answer whose first item
// carries the expected tag or category.
func (q evalQuestion) correct(ans Answer, items map[string]CatalogItem) bool {
	if ans.Kind == AnswerNone {
		return false
	}
	want := slices.Clone(q.Expect)
	if q.Catalog != "" {
		want = append(want, "catalog:"+q.Catalog)
	}
	top := ans.Top()
	for _, w := range want {
		tag, isCat := strings.CutPrefix(w, "catalog:")
		if !isCat {
			if ans.Kind == AnswerKnowledge && top == w {
				return true
			}
			continue
		}
		if ans.Kind != AnswerCatalog {
			continue
		}
		it, ok := items[top]
		if ok && (slices.Contains(it.Tags, tag) || it.Category.Label() == tag) {
			return true
		}
	}
	return false
}

// evalResult is a run of the assistant over a question set.
type evalResult struct {
	answerable, correct, falseRefusals int
	mustRefuse, refusedRight, refused  int
	failures                           []string
}

func (r evalResult) accuracy() float64 { return float64(r.correct) / float64(r.answerable) }

func (r evalResult) report(t *testing.T, name string, threshold float64) {
	t.Helper()
	for _, f := range r.failures {
		t.Log(f)
	}
	precision := 1.0
	if r.refused > 0 {
		precision = float64(r.refusedRight) / float64(r.refused)
	}
	recall := float64(r.refusedRight) / float64(r.mustRefuse)
	t.Logf("%s: top-1 accuracy %d/%d = %.1f%% (false refusals %d); refusal precision %d/%d = %.1f%%, recall %d/%d = %.1f%% (threshold %.2f)",
		name, r.correct, r.answerable, 100*r.accuracy(), r.falseRefusals, r.refusedRight, r.refused, 100*precision,
		r.refusedRight, r.mustRefuse, 100*recall, threshold)
}

func runEval(t *testing.T, a *Assistant, cat *fakeCatalog, qs []evalQuestion) evalResult {
	t.Helper()
	items := map[string]CatalogItem{}
	all, _ := cat.CatalogItems(context.Background(), nil, "", 1000)
	for _, it := range all {
		items[itemID(it.ID)] = it
	}
	var r evalResult
	for _, q := range qs {
		ans, err := a.Answer(context.Background(), Question{Text: q.Q, At: testNow}, nil)
		if err != nil {
			t.Fatalf("%s: %v", q.Q, err)
		}
		isRefused := ans.Kind == AnswerNone
		if isRefused {
			r.refused++
		}
		if q.Refuse {
			r.mustRefuse++
			if isRefused {
				r.refusedRight++
			} else {
				r.failures = append(r.failures, fmt.Sprintf("ANSWERED must-refuse %q → %s %s (%.3f)", q.Q, ans.Kind, ans.Top(), ans.Confidence))
			}
			continue
		}
		r.answerable++
		switch {
		case q.correct(ans, items):
			r.correct++
		case isRefused:
			r.falseRefusals++
			r.failures = append(r.failures, fmt.Sprintf("refused %q (want %v%s; best %s %.3f)", q.Q, q.Expect, q.Catalog, ans.Top(), ans.Confidence))
		default:
			r.failures = append(r.failures, fmt.Sprintf("wrong %q → %s %s (%.3f), want %v%s", q.Q, ans.Kind, ans.Top(), ans.Confidence, q.Expect, q.Catalog))
		}
	}
	return r
}

// TestEvaluation runs testdata/eval.yaml: top-1 accuracy on the answerable
// questions must be at least 90%, and every must-refuse question must be
// refused.
func TestEvaluation(t *testing.T) {
	a, cat := newTestAssistant(t, nil)
	r := runEval(t, a, cat, loadEval(t))
	r.report(t, "eval", a.Threshold())
	if r.answerable < 60 || r.mustRefuse < 10 {
		t.Errorf("the evaluation set is too small: %d answerable (want ≥ 60), %d must-refuse (want ≥ 10)", r.answerable, r.mustRefuse)
	}
	if r.accuracy() < 0.90 {
		t.Errorf("top-1 accuracy %.1f%% < 90%%", 100*r.accuracy())
	}
	if r.refusedRight < r.mustRefuse {
		t.Errorf("%d must-refuse questions were answered", r.mustRefuse-r.refusedRight)
	}
}

// TestHoldout runs testdata/holdout.yaml, questions never used for tuning:
// it measures how far the tuning generalises.
func TestHoldout(t *testing.T) {
	a, cat := newTestAssistant(t, nil)
	r := runEval(t, a, cat, loadQuestions(t, "testdata/holdout.yaml"))
	r.report(t, "holdout", a.Threshold())
	if r.accuracy() < 0.75 {
		t.Errorf("hold-out top-1 accuracy %.1f%% < 75%%", 100*r.accuracy())
	}
	if r.refusedRight < r.mustRefuse {
		t.Errorf("%d must-refuse hold-out questions were answered", r.mustRefuse-r.refusedRight)
	}
}

// TestConcurrentAnswers runs the evaluation from several goroutines while
// the knowledge base is replaced, for the race detector: the segmenter,
// the index and the catalog snapshot are shared.
func TestConcurrentAnswers(t *testing.T) {
	a, _ := newTestAssistant(t, nil)
	qs := loadEval(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			a.SetKnowledge(DemoKnowledge())
			a.InvalidateCatalog()
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, q := range qs {
				if _, err := a.Answer(context.Background(), Question{Text: q.Q, At: testNow}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done
}
