package assistant

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/rental"
)

// refusalToken is what the model is told to write, and nothing else, when
// the passages do not answer the question. It is never shown to a customer.
const refusalToken = "转人工"

// AnswerVision is an answer the vision model wrote about a photo.
const AnswerVision AnswerKind = "vision"

// systemPrompt grounds the model in the retrieved passages only.
func systemPrompt(passages string, image bool) string {
	var b strings.Builder
	b.WriteString("你是一家钓具租赁店的微信客服助手。你只能根据下面【资料】中的内容回答顾客的问题。\n规则：\n")
	b.WriteString("1. 资料里没有的信息一律不要回答，不要猜测或编造，尤其是价格、押金、时间、库存、规则和链接。\n")
	b.WriteString("2. 如果资料不足以回答这个问题，或问题与本店的钓具租赁无关，只回复三个字：" + refusalToken + "\n")
	b.WriteString("3. 价格、押金、数量、日期和链接必须与资料完全一致，链接原样给出。\n")
	b.WriteString("4. 用简体中文，口语化、简洁，一般不超过 150 字，可以分点；不要提到“资料”这个词，不要自称 AI 模型。\n")
	if image {
		b.WriteString("5. 顾客发来了一张图片。只有在能看清图片内容、且资料能回答时才回答；涉及损坏认定、赔偿、责任或你看不清的，只回复：" + refusalToken + "\n")
	}
	b.WriteString("\n【资料】\n")
	if passages == "" {
		b.WriteString("（无）\n")
	} else {
		b.WriteString(passages)
	}
	return b.String()
}

// passages lists what the model may use: the answer's catalog items and the
// knowledge entries that scored near the threshold or better.
func (a *Assistant) passages(ix *kbIndex, hits []kbHit, items []catalogHit, ans Answer, set rental.ShopSettings) string {
	var b strings.Builder
	n := 0
	when := "今天"
	if ans.Dated {
		when = periodText(ans.Period)
	}
	for _, h := range items {
		n++
		it := h.item
		stock := fmt.Sprintf("%s可租 %d 件", when, h.free)
		if h.err != nil {
			stock = "库存以下单页为准"
		}
		fmt.Fprintf(&b, "[%d] 装备：%s（%s；标签：%s）每天 %s，押金 %s，%s，预订链接 %s\n", n, it.Name, it.Category.Label(),
			strings.Join(it.Tags, "、"), yuan(int64(it.PricePerDay)), yuan(int64(it.Deposit)), stock, itemURL(a.opts.PublicURL, it.ID, ans.Period, ans.Dated))
	}
	for _, h := range hits {
		if h.confidence < a.opts.Threshold*0.75 || n >= 5 {
			continue
		}
		n++
		e := ix.entries[h.entry]
		fmt.Fprintf(&b, "[%d] %s\n%s\n", n, e.Title, render(e.Answer, set))
	}
	return b.String()
}

// gate holds back the first characters of a stream until it is clear the
// model is not refusing, so that the refusal token never reaches the
// customer.
type gate struct {
	out     func(string)
	buf     strings.Builder
	open    bool
	refused bool
}

func (g *gate) write(d string) {
	switch {
	case g.refused:
		return
	case g.open:
		if g.out != nil {
			g.out(d)
		}
		return
	}
	g.buf.WriteString(d)
	s := strings.TrimSpace(g.buf.String())
	if utf8.RuneCountInString(s) < utf8.RuneCountInString(refusalToken) {
		return
	}
	if strings.HasPrefix(s, refusalToken) {
		g.refused = true
		return
	}
	g.open = true
	if g.out != nil {
		g.out(g.buf.String())
	}
}

func refused(text string) bool {
	return strings.HasPrefix(strings.TrimSpace(text), refusalToken)
}

// phrase asks the model to write the answer from the passages. Any failure
// keeps the retrieval answer, which is already in ans.
func (a *Assistant) phrase(ctx context.Context, q Question, ans Answer, ix *kbIndex, hits []kbHit, items []catalogHit, set rental.ShopSettings, onDelta func(string)) (Answer, error) {
	req := llm.Request{Temperature: 0.2, Messages: []llm.Message{
		{Role: llm.System, Text: systemPrompt(a.passages(ix, hits, items, ans, set), false)},
		{Role: llm.User, Text: q.Text},
	}}
	g := &gate{out: onDelta}
	out, err := a.opts.Model.Stream(ctx, req, g.write)
	switch {
	case err != nil && isCancel(ctx, err):
		return ans, ctx.Err()
	case err != nil:
		ans.ModelError = err.Error()
		a.log.Warn("language model failed; sending the retrieval answer", "error", err)
		return ans, nil
	case g.refused || refused(out.Text):
		ans.ModelError = "model declined to answer from the passages"
		return ans, nil
	case strings.TrimSpace(out.Text) == "":
		ans.ModelError = "model returned an empty answer"
		return ans, nil
	}
	text := strings.TrimSpace(out.Text)
	// The reserve links are the point of a catalog answer: put back any the
	// model dropped.
	for _, h := range items {
		u := itemURL(a.opts.PublicURL, h.item.ID, ans.Period, ans.Dated)
		if !strings.Contains(text, u) {
			text += "\n" + h.item.Name + " 预订：" + u
		}
	}
	ans.Text, ans.Phrased = text, true
	return ans, nil
}

// answerImage handles a photo: the vision model answers from the passages
// the accompanying text retrieved, or a person does.
func (a *Assistant) answerImage(ctx context.Context, q Question, ans Answer, ix *kbIndex, hits []kbHit, items []catalogHit, set rental.ShopSettings, onDelta func(string)) (Answer, error) {
	handoff := func(why string) (Answer, error) {
		ans.Kind, ans.Text, ans.Handoff, ans.ModelError = AnswerNone, "", ReasonImage, why
		return ans, nil
	}
	if a.opts.Model == nil || !a.opts.Model.CanSee() {
		return handoff("")
	}
	text := q.Text
	if strings.TrimSpace(text) == "" {
		text = "（顾客只发了一张图片，没有文字）"
	}
	req := llm.Request{Temperature: 0.2, Messages: []llm.Message{
		{Role: llm.System, Text: systemPrompt(a.passages(ix, hits, items, ans, set), true)},
		{Role: llm.User, Text: text, Images: []llm.Image{*q.Image}},
	}}
	g := &gate{out: onDelta}
	out, err := a.opts.Model.Stream(ctx, req, g.write)
	switch {
	case err != nil && isCancel(ctx, err):
		return ans, ctx.Err()
	case err != nil:
		a.log.Warn("vision model failed; handing over", "error", err)
		return handoff(err.Error())
	case g.refused || refused(out.Text) || strings.TrimSpace(out.Text) == "":
		return handoff("model declined to answer the photo")
	}
	ans.Kind, ans.Handoff, ans.Phrased = AnswerVision, "", true
	ans.Text = strings.TrimSpace(out.Text)
	ans.Confidence = max(ans.Confidence, a.opts.Threshold)
	return ans, nil
}
