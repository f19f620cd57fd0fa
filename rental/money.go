package rental

import "strconv"

// Fen is an amount of money in fen (分), a hundredth of a yuan. Money is never
// a float: WeChat Pay counts in fen, and so does every sum here.
type Fen int64

// Yuan builds an amount from whole yuan, for prices written by hand.
func Yuan(y int64) Fen { return Fen(y * 100) }

// String formats an amount the way a Chinese receipt does: "¥12.50".
func (f Fen) String() string {
	sign := ""
	v := int64(f)
	if v < 0 {
		sign, v = "-", -v
	}
	cents := strconv.FormatInt(v%100, 10)
	if len(cents) == 1 {
		cents = "0" + cents
	}
	return sign + "¥" + strconv.FormatInt(v/100, 10) + "." + cents
}

// clampFen bounds v to [lo, hi].
func clampFen(v, lo, hi Fen) Fen {
	return max(lo, min(v, hi))
}
