package assistant

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-ego/gse"
)

//go:embed lexicon.txt
var lexiconText string

// lexicon is the segmenter with the shop's domain dictionary and the synonym
// table. It is read-only once built and shared by every Assistant.
type lexicon struct {
	seg    gse.Segmenter
	canon  map[string]string   // variant → canonical word
	expand map[string][]string // canonical word → further terms it stands for
	words  int                 // dictionary size, for the package numbers
}

// sharedLexicon builds the lexicon once per process (≈1 ms, see doc.go).
var sharedLexicon = sync.OnceValues(func() (*lexicon, error) { return parseLexicon(lexiconText) })

func parseLexicon(text string) (*lexicon, error) {
	lx := &lexicon{canon: map[string]string{}, expand: map[string][]string{}}
	words := map[string]bool{}
	add := func(w string) string {
		w = strings.ToLower(strings.TrimSpace(w))
		if w != "" {
			words[w] = true
		}
		return w
	}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.Contains(line, ">"):
			head, tail, _ := strings.Cut(line, ">")
			w := add(head)
			for _, t := range strings.Fields(tail) {
				lx.expand[w] = append(lx.expand[w], add(t))
			}
		case strings.Contains(line, ":"):
			head, tail, _ := strings.Cut(line, ":")
			c := add(head)
			for _, v := range strings.Fields(tail) {
				v = add(v)
				if old, dup := lx.canon[v]; dup && old != c {
					return nil, fmt.Errorf("lexicon line %d: %q is a variant of both %q and %q", n+1, v, old, c)
				}
				if v != c {
					lx.canon[v] = c
				}
			}
		default:
			for _, w := range strings.Fields(line) {
				add(w)
			}
		}
	}
	// Stop words must be dictionary words too, or the segmenter cuts "一直"
	// into characters that no longer look like a stop word.
	for w := range stopWords {
		if utf8.RuneCountInString(w) > 1 {
			words[w] = true
		}
	}
	var dict strings.Builder
	for w := range words {
		// Equal frequencies make the segmenter prefer the fewest, longest
		// words: "鲫鱼竿" stays one word rather than "鲫鱼"+"竿".
		fmt.Fprintf(&dict, "%s 1000 n\n", w)
	}
	lx.seg.NotLoadHMM = true // the HMM model is global state in gse (racy) and guesses words we do not want
	lx.seg.SkipLog = true
	if err := lx.seg.LoadDictStr(dict.String()); err != nil {
		return nil, err
	}
	lx.words = len(words)
	return lx, nil
}

// stopWords carry no meaning for retrieval: particles, pronouns, politeness
// and the "do you have" frames that intent detection reads separately.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		的 了 吗 呢 啊 吧 呀 哦 嘛 么 哈 嗯 喔 噢 哇 啦 咯 滴 着 过 哒 嘞 呗 捏
		我 你 您 他 她 它 我们 你们 咱 咱们 人家 自己 俺
		是 在 就 都 也 又 和 跟 与 及 或 或者 还是 而且 然后 所以 因为 如果 那么 就是
		请问 请 问 问下 问一下 一下 下 这 那 这个 那个 这些 那些 个 一个 些 点 一点
		要 想 能 会 可以 可不可以 能不能 会不会 该 应该 得 需要
		老板 亲 客服 麻烦 谢谢 好的 好 帮 帮我 给 让 把 被 比较 一直 现在 一般
		有 没 没有 有没有 还有 吗 不 没得 对 嘛 呐 哎 诶 喂 你好 您好 在吗 在不在
		今天 明天 后天 大后天 今日 明日 周末 这周 下周 本周 星期 礼拜 周一 周二 周三 周四 周五 周六 周日 周天
		月 日 早上 晚上 上午 下午 中午
	`) {
		m[w] = true
	}
	return m
}()

// reDecimalUnit turns "5米4" and "4米5" into "5.4米" so that they match "5.4 米".
var reDecimalUnit = regexp.MustCompile(`(\d)米(\d)`)

// normalize folds full-width forms to ASCII, lower-cases, and turns
// punctuation into spaces.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
			r -= 0xFEE0
		case r == 0x3000:
			r = ' '
		}
		switch {
		case r == '.' || r == '+' || r == '-':
			b.WriteRune(r)
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return reDecimalUnit.ReplaceAllString(b.String(), "${1}.${2}米")
}

// token is one word of a text after segmentation and synonym folding.
type token struct {
	word string // canonical
	stop bool
	han  bool
	span int // tokens in one span are adjacent in the text
}

// tokens cuts text into canonical words. Han runs go through the segmenter;
// runs of ASCII letters and digits (3.6, ml, pe) are one word each.
func (lx *lexicon) tokens(text string) []token {
	var out []token
	span := 0
	emit := func(w string, han bool) {
		if w == "" {
			return
		}
		if c, ok := lx.canon[w]; ok {
			w = c
		}
		out = append(out, token{word: w, stop: stopWords[w], han: han, span: span})
	}
	s := normalize(text)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case unicode.Is(unicode.Han, r):
			end := size
			for end < len(s) {
				r2, n := utf8.DecodeRuneInString(s[end:])
				if !unicode.Is(unicode.Han, r2) {
					break
				}
				end += n
			}
			for _, w := range lx.seg.Cut(s[:end], false) {
				emit(w, true)
			}
			s = s[end:]
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			end := 0
			for end < len(s) {
				c := s[end]
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' && end > 0 && end+1 < len(s) && s[end+1] >= '0' && s[end+1] <= '9') {
					break
				}
				end++
			}
			emit(s[:end], false)
			s = s[end:]
		default:
			span++
			s = s[size:]
		}
	}
	return out
}

// charFold folds the characters customers swap for each other, for the
// bigram channel, which reads the text as written.
var charFold = map[rune]rune{'杆': '竿', '泄': '卸', '订': '定', '帐': '账', '漂': '漂'}

var rawGrams = false

// analysis is a text prepared for both retrieval channels.
//
// The bigram channel reads the canonical text ("押金咋退" as "押金怎么退还"),
// not the text as written: measured on the evaluation set, bigrams of the
// written text lost 4–8 questions, because then 杆/竿 and 咋/怎么 only
// match in the word channel.
type analysis struct {
	words []string // canonical words and their expansions, stop words dropped
	grams []string // character bigrams over the canonical text, per span
}

func (lx *lexicon) analyze(text string) analysis {
	return lx.analyzeTokens(lx.tokens(text))
}

func (lx *lexicon) analyzeTokens(toks []token) analysis {
	var a analysis
	var run []rune
	flush := func() {
		switch {
		case len(run) == 1:
			a.grams = append(a.grams, string(run))
		case len(run) > 1:
			for i := 0; i+1 < len(run); i++ {
				a.grams = append(a.grams, string(run[i:i+2]))
			}
		}
		run = run[:0]
	}
	lastSpan := -1
	for _, t := range toks {
		if t.stop {
			flush()
			continue
		}
		a.words = append(a.words, t.word)
		a.words = append(a.words, lx.expand[t.word]...)
		if !t.han {
			flush()
			a.grams = append(a.grams, t.word)
			continue
		}
		if t.span != lastSpan {
			flush()
			lastSpan = t.span
		}
		run = append(run, []rune(t.word)...)
	}
	flush()
	return a
}

// yuan formats fen as the shop says prices: "15 元", "12.50 元".
func yuan(fen int64) string {
	if fen%100 == 0 {
		return strconv.FormatInt(fen/100, 10) + " 元"
	}
	return fmt.Sprintf("%d.%02d 元", fen/100, fen%100)
}
