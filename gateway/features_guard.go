package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/rental"
)

// Guard rails. Every flag names a KPI, a minimum sample, a threshold and a
// window. Over the window the members who had the feature (the cohort: the
// flag as it stands decides who) are compared with those who did not, on
// the share of bad outcomes of that KPI. The rollout pauses itself only
// when the cohort is clearly worse:
//
//   - both groups have at least MinSample outcomes;
//   - the cohort's bad share exceeds the rest's by more than Threshold
//     (an absolute difference: 0.15 = fifteen points);
//   - and the difference is significant: a one-sided two-proportion z-test
//     with z ≥ GuardZ (99%), so that a small group's bad luck is not read
//     as a regression.
//
// A flag at 100% for every tier has no "rest" and is not judged; nor is a
// paused or disabled one. A pause is audited (actor "guard", the figures)
// and, in the same transaction, a WeCom text to the owner is put in the
// outbox.

// GuardZ is the z-score a difference must reach.
const GuardZ = 2.33

// KindOwnerNotice is the outbox kind of a WeCom text to the owner.
const KindOwnerNotice = "owner.notice"

// GuardFigures are what a guard rail saw for one flag.
type GuardFigures struct {
	Flag        string  `json:"flag"`
	KPI         string  `json:"kpi"`
	WindowHours int     `json:"window_hours"`
	CohortBad   int     `json:"cohort_bad"`
	CohortTotal int     `json:"cohort_total"`
	RestBad     int     `json:"rest_bad"`
	RestTotal   int     `json:"rest_total"`
	CohortRate  float64 `json:"cohort_bad_rate"`
	RestRate    float64 `json:"rest_bad_rate"`
	Z           float64 `json:"z"`
	MinSample   int     `json:"min_sample"`
	Threshold   float64 `json:"threshold"`
	Verdict     string  `json:"verdict"` // paused | ok | small_sample | not_judged
}

// Guard judges every flag once and pauses those whose cohort is clearly
// worse. It returns what it saw.
func (f *Features) Guard(ctx context.Context) ([]GuardFigures, error) {
	var out []GuardFigures
	for _, fl := range f.Flags() {
		g, err := f.judge(ctx, fl)
		if err != nil {
			return out, err
		}
		out = append(out, g)
		if g.Verdict != "paused" {
			continue
		}
		reason := fmt.Sprintf("护栏自动暂停：%s 灰度组差于其他人（%s：%.1f%% vs %.1f%%，样本 %d / %d，z=%.2f）",
			fl.Key, kpiLabel(g.KPI), g.CohortRate*100, g.RestRate*100, g.CohortTotal, g.RestTotal, g.Z)
		ch := store.FeatureChange{Actor: "guard", Action: "pause", Reason: reason, Figures: g, Version: fl.Version}
		if f.OwnerWeCom != "" {
			text := "【功能灰度已自动暂停】\n" + reason + "\n请在店主后台查看并决定是否恢复。"
			p, _ := json.Marshal(bridgeNotice{To: []string{f.OwnerWeCom}, Text: text})
			ch.Notify = &store.OutboxMessage{Kind: KindOwnerNotice, Key: KindOwnerNotice + ":pause:" + fl.Key + ":" + strconv.Itoa(fl.Version), Payload: p}
		}
		now := f.now().UTC()
		_, _, err = f.Update(ctx, fl.Key, ch, func(x *store.FeatureFlag) error {
			x.PausedAt, x.PausedReason = &now, reason
			return nil
		})
		if rental.ErrorKind(err) == rental.KindConflict {
			continue // the owner changed it meanwhile: judged again next round
		}
		if err != nil {
			return out, err
		}
		f.logger.Warn("feature rollout paused by its guard rail", "flag", fl.Key, "kpi", g.KPI,
			"cohort_bad_rate", g.CohortRate, "rest_bad_rate", g.RestRate, "cohort_n", g.CohortTotal, "rest_n", g.RestTotal, "z", g.Z)
	}
	return out, nil
}

func (f *Features) judge(ctx context.Context, fl store.FeatureFlag) (GuardFigures, error) {
	g := GuardFigures{Flag: fl.Key, KPI: fl.KPI, WindowHours: int(fl.Window.Hours()), MinSample: fl.MinSample, Threshold: fl.Threshold, Verdict: "not_judged"}
	if fl.KPI == "" || !fl.Enabled || fl.Paused() || fl.Window <= 0 || (fl.Percent >= 100 && len(fl.Tiers) == 0) || fl.Percent <= 0 {
		return g, nil
	}
	now := f.now()
	samples, err := f.db.FeatureSamples(ctx, fl.KPI, now.Add(-fl.Window), now)
	if err != nil {
		return g, err
	}
	for _, s := range samples {
		if decideFlag(fl, FeatureSubject{MemberID: s.MemberID, Tier: s.Tier}) {
			g.CohortBad += s.Bad
			g.CohortTotal += s.Total
		} else {
			g.RestBad += s.Bad
			g.RestTotal += s.Total
		}
	}
	assessGuard(&g, fl)
	return g, nil
}

// assessGuard gives the verdict on counted outcomes (see the comment at the top
// of this file).
func assessGuard(g *GuardFigures, fl store.FeatureFlag) {
	minimum := max(fl.MinSample, 1)
	if g.CohortTotal < minimum || g.RestTotal < minimum {
		g.Verdict = "small_sample"
		return
	}
	g.CohortRate = float64(g.CohortBad) / float64(g.CohortTotal)
	g.RestRate = float64(g.RestBad) / float64(g.RestTotal)
	p := float64(g.CohortBad+g.RestBad) / float64(g.CohortTotal+g.RestTotal)
	se := math.Sqrt(p * (1 - p) * (1/float64(g.CohortTotal) + 1/float64(g.RestTotal)))
	diff := g.CohortRate - g.RestRate
	z := 0.0
	switch {
	case se > 0:
		z = diff / se
	case diff > 0:
		z = math.Inf(1)
	}
	g.Verdict = "ok"
	if diff > fl.Threshold && z >= GuardZ {
		g.Verdict = "paused"
	}
	g.Z = math.Round(min(z, 99)*100) / 100 // JSON has no infinity
}

func kpiLabel(k string) string {
	switch k {
	case store.KPICallConnect:
		return "未接通率"
	case store.KPIAssistantUnresolved:
		return "AI 未解决率"
	case store.KPILowRating:
		return "差评率"
	}
	return k
}

// OwnerNoticeSender is what delivering owner notices needs of WeCom.
type OwnerNoticeSender interface {
	SendText(ctx context.Context, touser []string, content string) (wecom.SendResult, error)
}

// OwnerNotices delivers KindOwnerNotice outbox rows through WeCom.
func OwnerNotices(w OwnerNoticeSender) store.Deliver {
	return func(ctx context.Context, item store.OutboxItem) error {
		var p bridgeNotice
		if err := json.Unmarshal(item.Payload, &p); err != nil {
			return &store.Permanent{Err: err}
		}
		_, err := w.SendText(ctx, p.To, p.Text)
		if err != nil && !bridgeRetryable(err) {
			return &store.Permanent{Err: err}
		}
		return err
	}
}
