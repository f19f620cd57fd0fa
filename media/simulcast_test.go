package media

import (
	"sync"
	"testing"
	"time"
)

func TestSelectLayer(t *testing.T) {
	three := []layerRate{{150_000, true}, {500_000, true}, {1_500_000, true}}
	for _, tc := range []struct {
		name    string
		layers  []layerRate
		budget  int
		current int
		want    int
	}{
		{"plenty picks the top", three, 5_000_000, -1, 2},
		{"middle budget picks the middle", three, 800_000, -1, 1},
		{"too little for any still sends the lowest", three, 50_000, -1, 0},
		{"exact fit from nothing", three, 500_000, -1, 1},
		{"down is immediate", three, 400_000, 2, 0},
		{"up needs headroom", three, 1_600_000, 1, 1},
		{"up with headroom", three, 1_800_000, 1, 2},
		{"up skips a layer when both fit", three, 1_800_000, 0, 2},
		{"up one when only it has headroom", three, 1_600_000, 0, 1},
		{"inactive top is skipped", []layerRate{{150_000, true}, {500_000, true}, {1_500_000, false}}, 5_000_000, 2, 1},
		{"nothing active keeps current", []layerRate{{150_000, false}, {500_000, false}}, 5_000_000, 1, 1},
		{"inactive lowest: next active is the floor", []layerRate{{150_000, false}, {500_000, true}}, 10_000, -1, 1},
		{"single layer", []layerRate{{300_000, true}}, 10_000, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectLayer(tc.layers, tc.budget, tc.current); got != tc.want {
				t.Errorf("selectLayer(budget %d, current %d) = %d, want %d", tc.budget, tc.current, got, tc.want)
			}
		})
	}
}

func TestSplitBudget(t *testing.T) {
	if got := splitBudget(1_000_000, 100_000, 3); got != 300_000 {
		t.Errorf("split = %d, want 300000", got)
	}
	if got := splitBudget(50_000, 100_000, 2); got != 0 {
		t.Errorf("over-committed split = %d, want 0", got)
	}
	if got := splitBudget(1_000_000, 0, 0); got != 0 {
		t.Errorf("no simulcast tracks = %d, want 0", got)
	}
}

func TestByBitrate(t *testing.T) {
	got := byBitrate([]layerRate{{900, true}, {100, true}, {400, true}})
	if got[0] != 1 || got[1] != 2 || got[2] != 0 {
		t.Errorf("order %v, want [1 2 0]", got)
	}
}

// budgets is a settable bandwidth estimate per subscriber.
type budgets struct {
	mu sync.Mutex
	m  map[string]int
}

func (b *budgets) set(id string, v int) {
	b.mu.Lock()
	b.m[id] = v
	b.mu.Unlock()
}

func (b *budgets) get(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[id]
}

// A simulcast publisher: each subscriber gets the layer its bandwidth
// allows, switches when that changes, and sees one continuous stream
// (no sequence gaps) across the switch.
func TestSimulcastLayerPerSubscriber(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	bw := &budgets{m: map[string]int{"low": 200_000, "high": 5_000_000}}
	f := bw.get
	m.budget.Store(&f)

	// Layers of about 80, 320 and 1300 kbit/s.
	pub := newClient(t, m, "sc", "pub", clientOptions{audio: true, simulcast: []string{"q", "h", "f"}, frameBytes: 300})
	low := newClient(t, m, "sc", "low", clientOptions{audio: true})
	high := newClient(t, m, "sc", "high", clientOptions{audio: true})
	for _, c := range []*testClient{pub, low, high} {
		c.join()
		c.startMedia()
	}
	onLayer := func(c *testClient, layer string, frames int64) func() bool {
		return func() bool {
			rt := c.received("pub", "video")
			if rt == nil {
				return false
			}
			rt.mu.Lock()
			defer rt.mu.Unlock()
			return rt.lastLayer == layer && rt.byLayer[layer] > frames
		}
	}
	waitFor(t, 15*time.Second, "low to get layer q", onLayer(low, "q", 15))
	waitFor(t, 15*time.Second, "high to get layer f", onLayer(high, "f", 15))

	bw.set("low", 5_000_000)
	waitFor(t, 15*time.Second, "low to move up to f", onLayer(low, "f", 15))
	bw.set("high", 200_000)
	waitFor(t, 15*time.Second, "high to move down to q", onLayer(high, "q", 15))

	for _, c := range []*testClient{low, high} {
		rt := c.received("pub", "video")
		if g := rt.gaps.Load(); g != 0 {
			t.Errorf("%s saw %d sequence numbers missing across layer switches", c.id, g)
		}
		if n := rt.foreign.Load(); n != 0 {
			t.Errorf("%s got %d frames not from pub", c.id, n)
		}
	}
	assertNoEcho(t, pub)
	if pub.received("low", "video") != nil {
		t.Error("a subscriber without video published some")
	}
}

// Adaptive quality end to end, with nothing overridden: a subscriber
// whose downlink is capped (a shaping UDP proxy, 500 kbit/s with a 150 ms
// queue) sees delay and loss, its GCC estimate falls, and the SFU moves it
// to a lower simulcast layer that fits, while a subscriber on an open link
// keeps a higher estimate and layer (the top one on a quiet machine). Both start from a 3 Mbit/s estimate, so the top
// layer is where each begins.
func TestSimulcastFollowsACappedDownlink(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, func(c *Config) { c.InitialBitrate = 3_000_000 })
	proxy := newLossyProxy(t, 0, 1)
	proxy.limit(500_000, 150*time.Millisecond)

	// Layers of about 80, 320 and 1300 kbit/s.
	pub := newClient(t, m, "cap", "pub", clientOptions{audio: true, simulcast: []string{"q", "h", "f"}, frameBytes: 300})
	capped := newClient(t, m, "cap", "capped", clientOptions{audio: true, proxy: proxy})
	open := newClient(t, m, "cap", "open", clientOptions{audio: true})
	for _, c := range []*testClient{pub, capped, open} {
		c.join()
		c.startMedia()
	}
	layerOf := func(c *testClient) (string, int64) {
		rt := c.received("pub", "video")
		if rt == nil {
			return "", 0
		}
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return rt.lastLayer, rt.frames.Load()
	}
	waitFor(t, 15*time.Second, "the open subscriber on layer f", func() bool {
		l, n := layerOf(open)
		return l == "f" && n > 30
	})
	capSub := serverParticipant(t, m, "cap", "capped")
	waitFor(t, 20*time.Second, "the capped subscriber to move below layer f", func() bool {
		l, _ := layerOf(capped)
		return l == "q" || l == "h"
	})
	layer, before := layerOf(capped)
	est := capSub.estimate()
	rt := capped.received("pub", "video")
	rt.mu.Lock()
	fromTop := rt.byLayer["f"]
	rt.mu.Unlock()
	if fromTop == 0 {
		// It starts from a 3 Mbit/s estimate, so on the top layer; on a
		// starved machine the estimate can fall before the top layer's
		// first keyframe gets through, and the switch comes first. The
		// estimate below (under the link, from 3 Mbit/s) still shows the
		// adaptation.
		t.Log("the capped subscriber moved down before a frame of layer f reached it")
	}
	t.Logf("capped: %d frames of f, then layer %s, estimate %d bit/s, shaper dropped %d packets; open: estimate %d bit/s",
		fromTop, layer, est, proxy.capDrops.Load(), serverParticipant(t, m, "cap", "open").estimate())
	if est >= 1_300_000 {
		t.Errorf("the capped subscriber's estimate is %d bit/s, above the 500 kbit/s link", est)
	}
	// Pictures keep coming on the lower layer, and the open subscriber
	// was not dragged down with it.
	time.Sleep(time.Second)
	if l, after := layerOf(capped); after-before < 10 || l == "f" {
		t.Errorf("capped subscriber: %d frames in the second after the switch, now on %q", after-before, l)
	}
	// The open subscriber is judged against the capped one, not held to
	// layer f: on a loaded machine (CI runs this under -race beside
	// everything else) its own estimate may sag too.
	rank := map[string]int{"q": 0, "h": 1, "f": 2}
	openLayer, _ := layerOf(open)
	cappedLayer, _ := layerOf(capped)
	openEst := serverParticipant(t, m, "cap", "open").estimate()
	if rank[openLayer] < rank[cappedLayer] || openEst < 2*capSub.estimate() {
		t.Errorf("the open subscriber (layer %s, %d bit/s) was dragged down with the capped one (layer %s, %d bit/s)",
			openLayer, openEst, cappedLayer, capSub.estimate())
	}
}
