package assistant

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAnswer measures retrieval-only answers (no language model) over
// the evaluation questions, in turn, with the in-memory test catalog:
//
//	go test -run '^$' -bench 'Answer|Build' -benchmem ./gateway/assistant/
//
// It reports answers/s and the p50/p95/p99 latency of one answer.
func BenchmarkAnswer(b *testing.B) {
	a, _ := newTestAssistant(b, nil)
	qs := loadEval(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := qs[i%len(qs)]
		start := time.Now()
		if _, err := a.Answer(ctx, Question{Text: q.Q, At: testNow}, nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkAnswerParallel is BenchmarkAnswer from GOMAXPROCS goroutines:
// the throughput of one instance.
func BenchmarkAnswerParallel(b *testing.B) {
	a, _ := newTestAssistant(b, nil)
	qs := loadEval(b)
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		i := 0
		for pb.Next() {
			q := qs[i%len(qs)]
			i++
			start := time.Now()
			if _, err := a.Answer(ctx, Question{Text: q.Q, At: testNow}, nil); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "answers/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.95), "p95-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkBuild measures what start-up and a knowledge-base edit cost:
// the lexicon (segmenter dictionary and synonyms) and the index.
func BenchmarkBuild(b *testing.B) {
	b.Run("lexicon", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := parseLexicon(lexiconText); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("index", func(b *testing.B) {
		lx, _ := sharedLexicon()
		entries := DemoKnowledge()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buildIndex(lx, entries)
		}
	})
}

// TestLoadCost logs the heap the lexicon and the demo index hold, for the
// package documentation (never fails on a number).
func TestLoadCost(t *testing.T) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	lx, err := parseLexicon(lexiconText)
	if err != nil {
		t.Fatal(err)
	}
	ix := buildIndex(lx, DemoKnowledge())
	d := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("lexicon (%d words) + index (%d entries, %d question documents): %v, heap +%d KiB",
		lx.words, len(ix.entries), len(ix.qOwner), d, (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/1024)
	runtime.KeepAlive(lx)
	runtime.KeepAlive(ix)
}
