package paysim

import (
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"
)

// Refund statuses.
const (
	refundProcessing = "PROCESSING"
	refundSuccess    = "SUCCESS"
	refundAbnormal   = "ABNORMAL"
	refundClosed     = "CLOSED"
)

// Refund limits from the docs (§3.9).
const (
	maxRefundsPerOrder = 50
	refundWindow       = 365 * 24 * time.Hour
)

// refund is one out_refund_no. Guarded by Server.mu.
type refund struct {
	outRefundNo, refundID string
	order                 *order
	amount                int64
	reason, notifyURL     string
	fundsAccount          string
	fingerprint           string
	status                string
	createdAt             time.Time
	successTime           time.Time
}

// refundBody is POST /v3/refund/domestic/refunds.
type refundBody struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	NotifyURL     string `json:"notify_url"`
	FundsAccount  string `json:"funds_account"`
	Amount        *struct {
		Refund   *int64 `json:"refund"`
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

func validateRefund(in *refundBody) *errReply {
	switch {
	case in.OutRefundNo == "":
		return paramError("out_refund_no", nil, "必填")
	case !validRefundNo(in.OutRefundNo):
		return paramError("out_refund_no", in.OutRefundNo, "必须是1-64位数字、大小写字母或_-|*@")
	case in.TransactionID == "" && in.OutTradeNo == "":
		return paramError("out_trade_no", nil, "transaction_id 和 out_trade_no 必须二选一")
	case utf8.RuneCountInString(in.Reason) > 80:
		return paramError("reason", in.Reason, "长度不能超过80个字符")
	case in.NotifyURL != "" && !validNotifyURL(in.NotifyURL):
		return paramError("notify_url", in.NotifyURL, "必须是不带参数的 http(s) 完整地址")
	case in.FundsAccount != "" && in.FundsAccount != "AVAILABLE" && in.FundsAccount != "UNSETTLED":
		return paramError("funds_account", in.FundsAccount, "只能是 AVAILABLE 或 UNSETTLED")
	case in.Amount == nil || in.Amount.Refund == nil:
		return paramError("amount.refund", nil, "必填")
	case in.Amount.Total == nil:
		return paramError("amount.total", nil, "必填")
	case *in.Amount.Refund < 1:
		return paramError("amount.refund", *in.Amount.Refund, "必须大于0（单位：分）")
	case *in.Amount.Total < 1:
		return paramError("amount.total", *in.Amount.Total, "必须大于0（单位：分）")
	case in.Amount.Currency != "" && in.Amount.Currency != "CNY":
		return paramError("amount.currency", in.Amount.Currency, "仅支持CNY")
	}
	return nil
}

// handleRefund enforces S20: out_refund_no is the idempotency key, the total
// must match the order, the refunds of an order never exceed its total, at
// most 50 per order, within a year of payment, and the merchant's available
// balance must cover it.
func (s *Server) handleRefund(req *apiRequest) reply {
	var in refundBody
	if err := json.Unmarshal(req.body, &in); err != nil {
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "请求体不是合法的 JSON：" + err.Error()})
	}
	if e := validateRefund(&in); e != nil {
		return fail(e)
	}
	amount, total := *in.Amount.Refund, *in.Amount.Total
	fp, _ := json.Marshal([]any{in.TransactionID, in.OutTradeNo, amount, total})

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	now := s.now()
	if rf := s.refunds[in.OutRefundNo]; rf != nil {
		if rf.fingerprint != string(fp) {
			return failf(http.StatusBadRequest, "INVALID_REQUEST", "商户退款单号 %s 已存在，且本次参数与原退款不一致", in.OutRefundNo)
		}
		return ok(s.refundJSON(rf)) // the same refund again: never twice
	}
	o := s.orders[in.OutTradeNo]
	if in.TransactionID != "" {
		byTxn := s.byTxn[in.TransactionID]
		if in.OutTradeNo != "" && byTxn != o {
			return failf(http.StatusBadRequest, "INVALID_REQUEST", "transaction_id 与 out_trade_no 不是同一笔订单")
		}
		o = byTxn
	}
	if o == nil {
		return failf(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "订单不存在")
	}
	o.refresh(now)
	switch {
	case !o.paid():
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "订单状态为 %s，不能退款", o.state)
	case now.Sub(o.successTime) > refundWindow:
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "订单已超过一年退款期限")
	case total != o.total:
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "amount.total 与原订单金额不一致",
			detail: &errDetail{Field: "amount.total", Value: total, Issue: "必须等于原订单金额", Location: "body"}})
	case len(o.refunds) >= maxRefundsPerOrder:
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "一笔订单最多退款 %d 次", maxRefundsPerOrder)
	}
	var refunded int64
	for _, r := range o.refunds {
		if r.status != refundClosed {
			refunded += r.amount
		}
	}
	if refunded+amount > o.total {
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "申请退款金额超过订单可退金额（已退 %d 分，订单 %d 分）", refunded, o.total)
	}
	if s.balance >= 0 {
		if amount > s.balance {
			return failf(http.StatusForbidden, "NOT_ENOUGH", "商户可用余额不足")
		}
		s.balance -= amount
	}
	rf := &refund{
		outRefundNo:  in.OutRefundNo,
		refundID:     "50" + s.randString(27, digits),
		order:        o,
		amount:       amount,
		reason:       in.Reason,
		notifyURL:    in.NotifyURL,
		fundsAccount: in.FundsAccount,
		fingerprint:  string(fp),
		status:       refundProcessing,
		createdAt:    now,
	}
	if rf.fundsAccount == "" {
		rf.fundsAccount = "AVAILABLE"
	}
	s.refunds[rf.outRefundNo] = rf
	o.refunds = append(o.refunds, rf)
	o.state = stateRefund
	s.log.Info("refund accepted", "out_trade_no", o.outTradeNo, "out_refund_no", rf.outRefundNo, "refund", amount)
	s.kick()
	return ok(s.refundJSON(rf))
}

func (s *Server) handleRefundQuery(req *apiRequest) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	rf := s.refunds[req.r.PathValue("out_refund_no")]
	if rf == nil {
		return failf(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "退款单不存在")
	}
	return ok(s.refundJSON(rf))
}

// refundJSON is the Refund of create and query answers.
func (s *Server) refundJSON(rf *refund) map[string]any {
	o := rf.order
	r := map[string]any{
		"refund_id":             rf.refundID,
		"out_refund_no":         rf.outRefundNo,
		"transaction_id":        o.transactionID,
		"out_trade_no":          o.outTradeNo,
		"channel":               "ORIGINAL",
		"user_received_account": "支付用户零钱",
		"create_time":           formatTime(rf.createdAt),
		"status":                rf.status,
		"funds_account":         rf.fundsAccount,
		"amount": map[string]any{
			"total":             o.total,
			"refund":            rf.amount,
			"from":              []any{},
			"payer_total":       o.total,
			"payer_refund":      rf.amount,
			"settlement_refund": rf.amount,
			"settlement_total":  o.total,
			"discount_refund":   0,
			"currency":          o.currency,
		},
		"promotion_detail": []any{},
	}
	if rf.status == refundSuccess {
		r["success_time"] = formatTime(rf.successTime)
	}
	return r
}

// refundNoticeJSON is the resource of REFUND.* notifications.
func (s *Server) refundNoticeJSON(rf *refund) map[string]any {
	o := rf.order
	n := map[string]any{
		"mchid":                 s.cfg.MchID,
		"out_trade_no":          o.outTradeNo,
		"transaction_id":        o.transactionID,
		"out_refund_no":         rf.outRefundNo,
		"refund_id":             rf.refundID,
		"refund_status":         rf.status,
		"user_received_account": "支付用户零钱",
		"amount": map[string]any{
			"total":        o.total,
			"refund":       rf.amount,
			"payer_total":  o.total,
			"payer_refund": rf.amount,
		},
	}
	if rf.status == refundSuccess {
		n["success_time"] = formatTime(rf.successTime)
	}
	return n
}

// finishRefundLocked moves a PROCESSING refund to SUCCESS or ABNORMAL and
// queues its notification (to the refund's notify_url; none without one).
func (s *Server) finishRefundLocked(rf *refund, status string, now time.Time) {
	rf.status = status
	event, summary := "REFUND.SUCCESS", "退款成功"
	if status == refundSuccess {
		rf.successTime = now
	} else {
		event, summary = "REFUND.ABNORMAL", "退款异常"
	}
	s.log.Info("refund finished", "out_refund_no", rf.outRefundNo, "status", status)
	if rf.notifyURL == "" {
		return
	}
	plaintext, _ := json.Marshal(s.refundNoticeJSON(rf))
	s.enqueueLocked(event, summary, "refund", plaintext, rf.notifyURL, rf.order.outTradeNo, rf.outRefundNo, now)
}

// advanceLocked does the clock-driven work that is due: refunds whose delay
// has passed complete. Called by the worker and by every read, so a test that
// advances the clock sees the effect on its next request.
func (s *Server) advanceLocked() {
	now := s.now()
	delay := s.scaled(s.cfg.RefundDelay)
	// Walk orders in creation order so notifications queue deterministically.
	for _, o := range s.ordered {
		for _, rf := range o.refunds {
			if rf.status == refundProcessing && !now.Before(rf.createdAt.Add(delay)) {
				s.finishRefundLocked(rf, refundSuccess, now)
			}
		}
	}
}
