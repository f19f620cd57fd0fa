package media

import "sort"

// Layer selection. A simulcast publisher sends the same video two or three
// times at different sizes; each subscriber gets one of them, the best its
// downlink can carry. The downlink figure is the subscriber's send-side
// bandwidth estimate (GCC over its TWCC feedback). Selection is a pure
// function of measured layer bitrates and that budget so it can be tested
// without a network.

// upHeadroom is how much spare budget a higher layer needs before we move
// up to it: without it a layer whose rate sits at the estimate would flap
// up and down every tick, and every switch costs a keyframe.
const upHeadroom = 1.15

// layerRate is what the allocator knows of one layer.
type layerRate struct {
	bitrate int  // measured, bit/s
	active  bool // packets arrived since the last measurement
}

// selectLayer picks an index into layers (sorted by ascending bitrate) for
// a subscriber with budget bit/s to spend on this track, given the layer it
// is on now (-1 for none). Down is immediate; up needs upHeadroom. When
// nothing fits, the lowest active layer: a small picture beats a frozen one,
// and audio has already been paid for. When no layer is active, current is
// kept (the publisher may be muted or reconnecting).
func selectLayer(layers []layerRate, budget int, current int) int {
	lowest, fits := -1, -1
	for i, l := range layers {
		if !l.active {
			continue
		}
		if lowest < 0 {
			lowest = i
		}
		if l.bitrate <= budget {
			fits = i
		}
	}
	switch {
	case lowest < 0:
		return current
	case fits < 0:
		return lowest
	}
	if current < 0 || current >= len(layers) || !layers[current].active || fits <= current {
		return fits
	}
	for i := fits; i > current; i-- {
		if layers[i].active && float64(layers[i].bitrate)*upHeadroom <= float64(budget) {
			return i
		}
	}
	return current
}

// splitBudget divides a subscriber's estimate between its tracks: fixed
// (audio and single-layer video, which cannot be shrunk) first, the rest in
// equal shares to the n simulcast tracks. Equal shares are the simple fair
// choice for a call of two to eight people where every face matters alike.
func splitBudget(estimate, fixed, n int) int {
	if n <= 0 {
		return 0
	}
	rest := estimate - fixed
	if rest < 0 {
		rest = 0
	}
	return rest / n
}

// byBitrate returns the order of layers by ascending bitrate. Layers are
// ranked by what they measure, not by their rid, because clients name
// layers differently (q/h/f, l/m/h, 0/1/2) and list them in either order.
func byBitrate(rates []layerRate) []int {
	idx := make([]int, len(rates))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rates[idx[a]].bitrate < rates[idx[b]].bitrate })
	return idx
}
