package gateway

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The owner's KPIs:
//
//	GET /api/v1/owner/kpis?from=2026-11-01&to=2026-11-08       JSON; Shanghai days, to excluded
//	GET /api/v1/owner/kpis.csv?from=…&to=…                     the same figures as CSV (UTF-8 with BOM, for Excel)
//
// Without from/to the period is the last 7 days, today included. The same
// figures over that rolling week are Prometheus gauges (tacklegate_kpi_*),
// refreshed every KPIRefresh by KPIs.Run.

// KPIRefresh is how often the gauges are recomputed.
const KPIRefresh = time.Minute

// maxKPIDays bounds a period.
const maxKPIDays = 366

// KPIs configures the KPI routes and gauges.
type KPIs struct {
	DB     *store.DB
	Logger *slog.Logger
	Now    func() time.Time // default time.Now

	gauges *kpiGauges
}

func (k *KPIs) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// MountKPIs adds the KPI routes and registers the gauges on the gateway's
// registry. It needs the identity routes.
func (s *Server) MountKPIs(k *KPIs) {
	if s.auth == nil {
		panic("gateway: MountKPIs needs Options.Identity")
	}
	if k.Logger == nil {
		k.Logger = s.logger
	}
	k.gauges = newKPIGauges(s.opts.Registry)
	s.api("GET", "/owner/kpis", ownerOnly, k.json)
	s.api("GET", "/owner/kpis.csv", ownerOnly, k.csv)
}

// period reads ?from=&to= (Shanghai days, to excluded).
func (k *KPIs) period(c *fiber.Ctx) (store.KPIPeriod, error) {
	const op = "kpi.period"
	today := rental.DateOf(k.now())
	from, to := today.AddDays(-6).Start(), today.AddDays(1).Start()
	var err error
	if v := c.Query("from"); v != "" {
		if from, err = store.ParseKPIDay(v); err != nil {
			return store.KPIPeriod{}, err
		}
	}
	if v := c.Query("to"); v != "" {
		if to, err = store.ParseKPIDay(v); err != nil {
			return store.KPIPeriod{}, err
		}
	}
	switch {
	case !from.Before(to):
		return store.KPIPeriod{}, rental.Errorf(op, rental.KindInvalid, "开始日期须早于结束日期 (from must be before to)")
	case to.Sub(from) > maxKPIDays*24*time.Hour:
		return store.KPIPeriod{}, rental.Errorf(op, rental.KindInvalid, "一次最多查询 %d 天 (at most %d days)", maxKPIDays, maxKPIDays)
	}
	return store.KPIPeriod{From: from, To: to}, nil
}

type kpiView struct {
	store.KPIs
	Period struct {
		From string `json:"from"`
		To   string `json:"to"` // excluded
	} `json:"period"`
}

func kpiViewOf(p store.KPIPeriod, k store.KPIs) kpiView {
	v := kpiView{KPIs: k}
	v.Period.From, v.Period.To = rental.DateOf(p.From).String(), rental.DateOf(p.To).String()
	return v
}

func (k *KPIs) json(c *fiber.Ctx) error {
	p, err := k.period(c)
	if err != nil {
		return err
	}
	figs, err := k.DB.KPIs(c.UserContext(), p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(kpiViewOf(p, figs))
}

func (k *KPIs) csv(c *fiber.Ctx) error {
	p, err := k.period(c)
	if err != nil {
		return err
	}
	figs, err := k.DB.KPIs(c.UserContext(), p)
	if err != nil {
		return err
	}
	v := kpiViewOf(p, figs)
	body := KPICSV(v)
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="tacklegate-kpi-%s-%s.csv"`, v.Period.From, v.Period.To))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(body)
}

func kpiPct(v float64) string  { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }
func kpiNum(v float64) string  { return strconv.FormatFloat(v, 'f', -1, 64) }
func kpiItoa(n int) string     { return strconv.Itoa(n) }
func kpiItoa64(n int64) string { return strconv.FormatInt(n, 10) }
func kpiSecs(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func kpiStars(i int) string    { return strconv.Itoa(i+1) + "星" }
func kpiVideoName(w bool) string {
	if w {
		return "有视频验货"
	}
	return "无视频验货"
}

// kpiYuan is a plain number of yuan ("12.50"), which Excel can sum.
func kpiYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// KPICSV writes the figures as a CSV that Excel opens with the Chinese
// intact: UTF-8 with a byte-order mark, one figure per row (分类, 指标,
// 数值, 单位).
func KPICSV(v kpiView) []byte {
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	w := csv.NewWriter(&buf)
	row := func(section, metric, value, unit string) { w.Write([]string{section, metric, value, unit}) } //nolint:errcheck // a bytes.Buffer does not fail; Flush reports
	row("分类", "指标", "数值", "单位")
	row("期间", "开始（含）", v.Period.From, "日期")
	row("期间", "结束（不含）", v.Period.To, "日期")
	cl := v.Calls
	row("视频/语音", "发起", kpiItoa(cl.Started), "次")
	row("视频/语音", "接通", kpiItoa(cl.Answered), "次")
	row("视频/语音", "未接", kpiItoa(cl.Missed), "次")
	row("视频/语音", "接通率", kpiPct(cl.ConnectRate), "")
	row("视频/语音", "平均通话时长", kpiSecs(cl.AvgDurationSec), "秒")
	row("视频/语音", "P90 通话时长", kpiSecs(cl.P90DurationSec), "秒")
	for h, n := range cl.MissedByHour {
		row("未接（按小时）", fmt.Sprintf("%02d:00–%02d:59", h, h), kpiItoa(n), "次")
	}
	for _, s := range []struct {
		name string
		r    store.Ratings
	}{{"会话评分", v.Satisfaction.Conversations}, {"通话评分", v.Satisfaction.Calls}, {"全部评分", v.Satisfaction.All}} {
		row(s.name, "评分数", kpiItoa(s.r.Count), "个")
		row(s.name, "平均分", kpiNum(s.r.Average), "星")
		for i, n := range s.r.Distribution {
			row(s.name, kpiStars(i), kpiItoa(n), "个")
		}
	}
	ch := v.Chat
	row("会话", "新会话", kpiItoa(ch.Opened), "个")
	for _, st := range []struct{ k, name string }{{"open", "排队中"}, {"assigned", "处理中"}, {"resolved", "已解决"}} {
		row("会话", "状态："+st.name, kpiItoa(ch.ByState[st.k]), "个")
	}
	row("会话", "有人工回复", kpiItoa(ch.Responded), "个")
	row("会话", "平均首次响应", kpiSecs(ch.AvgFirstResponse), "秒")
	row("会话", "首次响应中位数", kpiSecs(ch.P50FirstResponse), "秒")
	row("会话", "P90 首次响应", kpiSecs(ch.P90FirstResponse), "秒")
	row("会话", "消息总数", kpiItoa(ch.Messages), "条")
	for _, d := range ch.MessagesPerDay {
		row("每日消息", d.Day, kpiItoa(d.Total), "条")
	}
	a := v.Assistant
	row("AI 客服", "回合", kpiItoa(a.Turns), "次")
	row("AI 客服", "直接回答", kpiItoa(a.Answered), "次")
	row("AI 客服", "转人工", kpiItoa(a.HandedOff), "次")
	row("AI 客服", "已解决", kpiItoa(a.Resolved), "次")
	row("AI 客服", "未解决", kpiItoa(a.Unresolved), "次")
	row("AI 客服", "未解决占比", kpiPct(a.UnresolvedShare), "")
	for i, q := range a.TopUnresolved {
		row("未解决问题", fmt.Sprintf("%d. %s", i+1, q.Question), kpiItoa(q.Count), "次")
	}
	for _, g := range []struct {
		name string
		g    store.RentalGroup
	}{{"租赁（全部）", v.Rental.All}, {"租赁（" + kpiVideoName(true) + "）", v.Rental.WithVideo}, {"租赁（" + kpiVideoName(false) + "）", v.Rental.WithoutVideo}} {
		row(g.name, "订单", kpiItoa(g.g.Orders), "单")
		row(g.name, "收入", kpiYuan(g.g.Revenue), "元")
		row(g.name, "押金", kpiYuan(g.g.Deposits), "元")
		row(g.name, "已退押金", kpiYuan(g.g.DepositsRefunded), "元")
		row(g.name, "有损坏", kpiItoa(g.g.Damaged), "单")
		row(g.name, "损坏费", kpiYuan(g.g.DamageFees), "元")
		row(g.name, "有争议", kpiItoa(g.g.Disputed), "单")
	}
	for _, q := range v.QuickHelp {
		row("快捷求助使用", q.Title, kpiItoa64(q.Uses), "次")
	}
	w.Flush()
	return buf.Bytes()
}

// kpiGauges are the rolling week's figures as Prometheus gauges.
type kpiGauges struct {
	calls, callDuration, ratingAvg, ratings, firstResponse, conversations, messages *prometheus.GaugeVec
	assistantTurns, orders, revenue, refunded, damaged, disputed, quickHelp         *prometheus.GaugeVec
	connect, unresolved, refreshed                                                  prometheus.Gauge
}

func newKPIGauges(reg prometheus.Registerer) *kpiGauges {
	const week = " over the last 7 days (Shanghai days, today included)"
	vec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tacklegate_kpi_" + name, Help: help + week}, labels)
	}
	one := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "tacklegate_kpi_" + name, Help: help + week})
	}
	g := &kpiGauges{
		calls:          vec("calls", "Video and voice calls by outcome (started, answered, missed)", "outcome"),
		callDuration:   vec("call_duration_seconds", "Answered calls' duration (avg, p90)", "stat"),
		ratingAvg:      vec("rating_average", "Average customer rating, 1-5 (conversation, call, all)", "source"),
		ratings:        vec("ratings", "Customer ratings by stars", "source", "stars"),
		firstResponse:  vec("first_response_seconds", "Time from a conversation's opening to a person's first reply (avg, p50, p90)", "stat"),
		conversations:  vec("conversations", "Conversations opened, by state now", "state"),
		messages:       vec("messages", "Chat messages by author (customer, staff, assistant, system)", "author"),
		assistantTurns: vec("assistant_turns", "Assistant turns by outcome (resolved, unresolved, pending)", "outcome"),
		orders:         vec("orders", "Orders paid, with or without a recorded video inspection", "video"),
		revenue:        vec("revenue_fen", "Revenue in fen (rent, late and damage fees)", "video"),
		refunded:       vec("deposits_refunded_fen", "Deposits refunded in fen", "video"),
		damaged:        vec("damaged_orders", "Orders charged a damage fee", "video"),
		disputed:       vec("disputed_orders", "Orders whose customer raised a dispute", "video"),
		quickHelp:      vec("quickhelp_uses", "Quick-help taps by entry", "entry", "title"),
		connect:        one("call_connect_ratio", "Calls answered / started"),
		unresolved:     one("assistant_unresolved_ratio", "Share of decided assistant turns that were not resolved"),
		refreshed:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "tacklegate_kpi_refreshed_timestamp_seconds", Help: "When the KPI gauges were last computed (Unix time)"}),
	}
	for _, c := range []prometheus.Collector{g.calls, g.callDuration, g.ratingAvg, g.ratings, g.firstResponse, g.conversations, g.messages,
		g.assistantTurns, g.orders, g.revenue, g.refunded, g.damaged, g.disputed, g.quickHelp, g.connect, g.unresolved, g.refreshed} {
		if err := reg.Register(c); err != nil {
			if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
				panic(err)
			}
		}
	}
	return g
}

func (g *kpiGauges) set(k store.KPIs, at time.Time) {
	c := k.Calls
	g.calls.WithLabelValues("started").Set(float64(c.Started))
	g.calls.WithLabelValues("answered").Set(float64(c.Answered))
	g.calls.WithLabelValues("missed").Set(float64(c.Missed))
	g.connect.Set(c.ConnectRate)
	g.callDuration.WithLabelValues("avg").Set(c.AvgDurationSec)
	g.callDuration.WithLabelValues("p90").Set(c.P90DurationSec)
	for _, s := range []struct {
		name string
		r    store.Ratings
	}{{"conversation", k.Satisfaction.Conversations}, {"call", k.Satisfaction.Calls}, {"all", k.Satisfaction.All}} {
		g.ratingAvg.WithLabelValues(s.name).Set(s.r.Average)
		for i, n := range s.r.Distribution {
			g.ratings.WithLabelValues(s.name, strconv.Itoa(i+1)).Set(float64(n))
		}
	}
	g.firstResponse.WithLabelValues("avg").Set(k.Chat.AvgFirstResponse)
	g.firstResponse.WithLabelValues("p50").Set(k.Chat.P50FirstResponse)
	g.firstResponse.WithLabelValues("p90").Set(k.Chat.P90FirstResponse)
	for st, n := range k.Chat.ByState {
		g.conversations.WithLabelValues(st).Set(float64(n))
	}
	var by [4]int
	for _, d := range k.Chat.MessagesPerDay {
		by[0] += d.Customer
		by[1] += d.Staff
		by[2] += d.Assistant
		by[3] += d.System
	}
	for i, a := range []string{"customer", "staff", "assistant", "system"} {
		g.messages.WithLabelValues(a).Set(float64(by[i]))
	}
	g.assistantTurns.WithLabelValues("resolved").Set(float64(k.Assistant.Resolved))
	g.assistantTurns.WithLabelValues("unresolved").Set(float64(k.Assistant.Unresolved))
	g.assistantTurns.WithLabelValues("pending").Set(float64(k.Assistant.Pending))
	g.unresolved.Set(k.Assistant.UnresolvedShare)
	for _, r := range []struct {
		label string
		g     store.RentalGroup
	}{{"with", k.Rental.WithVideo}, {"without", k.Rental.WithoutVideo}} {
		g.orders.WithLabelValues(r.label).Set(float64(r.g.Orders))
		g.revenue.WithLabelValues(r.label).Set(float64(r.g.Revenue))
		g.refunded.WithLabelValues(r.label).Set(float64(r.g.DepositsRefunded))
		g.damaged.WithLabelValues(r.label).Set(float64(r.g.Damaged))
		g.disputed.WithLabelValues(r.label).Set(float64(r.g.Disputed))
	}
	g.quickHelp.Reset() // entries come and go
	for _, q := range k.QuickHelp {
		g.quickHelp.WithLabelValues(strconv.FormatInt(q.ID, 10), q.Title).Set(float64(q.Uses))
	}
	g.refreshed.Set(float64(at.Unix()))
}

// Refresh recomputes the gauges over the last 7 days.
func (k *KPIs) Refresh(ctx context.Context) error {
	if k.gauges == nil {
		return nil
	}
	now := k.now()
	today := rental.DateOf(now)
	figs, err := k.DB.KPIs(ctx, store.KPIPeriod{From: today.AddDays(-6).Start(), To: today.AddDays(1).Start()})
	if err != nil {
		return err
	}
	k.gauges.set(figs, now)
	return nil
}

// Run refreshes the gauges every KPIRefresh until ctx ends.
func (k *KPIs) Run(ctx context.Context) {
	t := time.NewTicker(KPIRefresh)
	defer t.Stop()
	for {
		if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
			k.Logger.Warn("KPI gauges not refreshed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
