package assistant

import "math"

// BM25 parameters: the usual k1 and b. Question variants are short and
// answers long, so each kind of text is its own field with its own average
// length, never one mixed corpus.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

var capIdf = false

type posting struct {
	doc int32
	tf  float32
}

// field is an inverted index over one kind of text (question variants,
// answers, catalog items) in one channel (words or bigrams).
type field struct {
	postings map[string][]posting
	lens     []float32
	groups   []int32 // the entry each document belongs to
	avg      float64
	df       map[string]float64 // groups containing the term
	n        float64            // groups
}

func newField() *field { return &field{postings: map[string][]posting{}} }

// add indexes a document of its own group and returns its number.
func (f *field) add(terms []string) int { return f.addTo(len(f.lens), terms) }

// addTo indexes a document that belongs to group (an entry with several
// question variants is one group). Document frequencies count groups, so
// that a word an entry repeats in each of its variants is not mistaken for
// a common one.
func (f *field) addTo(group int, terms []string) int {
	doc := int32(len(f.lens))
	f.groups = append(f.groups, int32(group))
	tf := map[string]float32{}
	for _, t := range terms {
		tf[t]++
	}
	for t, n := range tf {
		f.postings[t] = append(f.postings[t], posting{doc: doc, tf: n})
	}
	f.lens = append(f.lens, float32(len(terms)))
	return int(doc)
}

func (f *field) finish() {
	f.df = make(map[string]float64, len(f.postings))
	groups := map[int32]bool{}
	for t, ps := range f.postings {
		seen := map[int32]bool{}
		for _, p := range ps {
			g := f.groups[p.doc]
			seen[g] = true
			groups[g] = true
		}
		f.df[t] = float64(len(seen))
	}
	f.n = float64(len(groups))
	var sum float64
	for _, l := range f.lens {
		sum += float64(l)
	}
	if len(f.lens) > 0 {
		f.avg = sum / float64(len(f.lens))
	}
	if f.avg == 0 {
		f.avg = 1
	}
}

// idf is BM25's (Lucene's) non-negative inverse document frequency. A term
// no document has gets the highest value: a question full of words the
// shop never wrote about cannot score well.
func (f *field) idf(term string) float64 {
	df := f.df[term]
	return math.Log(1 + (f.n-df+0.5)/(df+0.5))
}

// normalized scores every document against the query's distinct terms and
// divides by the sum of their idf, so that a document matching every query
// term about once, at average length, scores about 1 whatever the query —
// which is what lets one threshold mean the same for short and long
// questions. Scores are clamped to [0, 1]; out has one slot per document.
func (f *field) normalized(query []string, out []float64) {
	clear(out)
	seen := make(map[string]bool, len(query))
	var max float64
	for _, t := range query {
		if seen[t] {
			continue
		}
		seen[t] = true
		idf := f.idf(t)
		max += idf
		for _, p := range f.postings[t] {
			tf := float64(p.tf)
			norm := 1 - bm25B + bm25B*float64(f.lens[p.doc])/f.avg
			// Capped at idf: a term is matched or not; repeating it in a
			// long answer must not make up for missing query terms.
			out[p.doc] += idf * tf * (bm25K1 + 1) / (tf + bm25K1*norm)
		}
	}
	if max == 0 {
		clear(out)
		return
	}
	for i := range out {
		out[i] = math.Min(out[i]/max, 1)
	}
}
