package assistant

import (
	"math"
	"sort"
)

// Weights of the retrieval score. A channel's score is BM25 normalised to
// [0, 1] (see field.normalized); an entry's confidence is the better of its
// best question variant and its answer text, the answer discounted because
// long texts share words with many questions by chance. Both were chosen on
// the evaluation set from a small grid (words 0.4–0.8, answers 0.3–0.85):
// the accuracy surface is flat within ±2 questions around these values.
const (
	wordWeight   = 0.5 // words vs character bigrams, within a field
	answerWeight = 0.5 // answer text vs question variants
)

// kbIndex is the searchable form of the enabled entries. It is immutable;
// a knowledge-base change builds a new one.
type kbIndex struct {
	entries []Entry
	qWords  *field // title+tags and every question variant, one document each
	qGrams  *field
	qOwner  []int  // question document → entry
	aWords  *field // answers, one document per entry
	aGrams  *field
}

func buildIndex(lx *lexicon, entries []Entry) *kbIndex {
	ix := &kbIndex{qWords: newField(), qGrams: newField(), aWords: newField(), aGrams: newField()}
	for _, e := range entries {
		if !e.Enabled {
			continue
		}
		n := len(ix.entries)
		ix.entries = append(ix.entries, e)
		texts := append([]string{e.Title + " " + joinTags(e.Tags)}, e.Questions...)
		for _, q := range texts {
			// A question variant is a set of words: "押金 押金" (title
			// and tag) is no more about deposits than "押金" once.
			a := lx.analyze(q)
			ix.qWords.addTo(n, distinct(a.words))
			ix.qGrams.addTo(n, distinct(a.grams))
			ix.qOwner = append(ix.qOwner, n)
		}
		a := lx.analyze(e.Title + " " + e.Answer)
		ix.aWords.add(a.words)
		ix.aGrams.add(a.grams)
	}
	for _, f := range []*field{ix.qWords, ix.qGrams, ix.aWords, ix.aGrams} {
		f.finish()
	}
	return ix
}

func distinct(terms []string) []string {
	out := terms[:0:0]
	seen := make(map[string]bool, len(terms))
	for _, t := range terms {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func joinTags(tags []string) string {
	s := ""
	for _, t := range tags {
		s += t + " "
	}
	return s
}

type kbHit struct {
	entry      int
	confidence float64
	q, a       float64 // best question variant, answer (before its weight)
}

// search ranks the entries for a question, best first, at most limit.
func (ix *kbIndex) search(a analysis, limit int) []kbHit {
	if len(ix.entries) == 0 || (len(a.words) == 0 && len(a.grams) == 0) {
		return nil
	}
	nq := len(ix.qOwner)
	qw, qg := make([]float64, nq), make([]float64, nq)
	ix.qWords.normalized(a.words, qw)
	ix.qGrams.normalized(a.grams, qg)
	ne := len(ix.entries)
	aw, ag := make([]float64, ne), make([]float64, ne)
	ix.aWords.normalized(a.words, aw)
	ix.aGrams.normalized(a.grams, ag)

	best := make([]float64, ne)
	for d := 0; d < nq; d++ {
		s := wordWeight*qw[d] + (1-wordWeight)*qg[d]
		e := ix.qOwner[d]
		best[e] = math.Max(best[e], s)
	}
	hits := make([]kbHit, 0, ne)
	for e := 0; e < ne; e++ {
		ans := answerWeight * (wordWeight*aw[e] + (1-wordWeight)*ag[e])
		c := math.Max(best[e], ans)
		if c > 0 {
			hits = append(hits, kbHit{entry: e, confidence: c, q: best[e], a: ans / answerWeight})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].confidence > hits[j].confidence })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}
