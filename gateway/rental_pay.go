package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/rental"
)

// WeChat Pay for orders. Money moves only on what WeChat Pay itself says:
// a verified notification (stored by /callbacks/wechatpay, processed here
// from the stored record) or an answer to our own query. The mini-program's
// wx.requestPayment success callback proves nothing.
//
//   - POST /orders/:id/pay starts (or resumes) an attempt with its own
//     out_trade_no, prepays it and returns the wx.requestPayment parameters.
//   - ProcessNotifications applies stored TRANSACTION.SUCCESS and REFUND.*
//     notifications, each in one transaction with marking it processed.
//   - Sync expires unpaid orders, closes their attempts at WeChat Pay, and
//     asks WeChat Pay about attempts and refunds whose notification is late.
//   - Refunds are outbox messages (KindRefund): they are written with the
//     change that makes money due and sent with retries; out_refund_no makes
//     every resend safe.
//
// Anything that cannot simply be applied — an unknown out_trade_no, an
// amount, appid or mchid that does not match, money for an order that no
// longer wanted it — is recorded as a store.PayAnomaly for reconciliation,
// never retried forever and never an error to WeChat Pay.

// KindRefund is the outbox kind of WeChat Pay refund requests.
const KindRefund = "wechatpay_refund"

type refundJob struct {
	OutRefundNo string `json:"out_refund_no"`
}

// startRefunds creates the refund attempts that bring the order's refund
// due to zero and writes one outbox message for each, in tx.
func (r *Rental) startRefunds(ctx context.Context, tx *store.DB, o *rental.Order, reason string) error {
	refunds, err := o.StartRefunds(reason, r.now())
	if err != nil {
		return err
	}
	for _, rf := range refunds {
		payload, _ := json.Marshal(refundJob{OutRefundNo: rf.OutRefundNo})
		if err := tx.Enqueue(ctx, KindRefund, "refund-"+rf.OutRefundNo, payload); err != nil {
			return err
		}
	}
	return nil
}

// describe is the payment description shown in WeChat (≤127 characters).
// It depends only on the order, so a resent prepay carries the same one.
func describe(o *rental.Order) string {
	first := ""
	if len(o.Lines) > 0 {
		first = o.Lines[0].ItemName
	}
	if utf8.RuneCountInString(first) > 40 {
		first = string([]rune(first)[:40]) + "…"
	}
	s := "渔具租赁 " + first
	if n := len(o.Lines); n > 1 {
		s += " 等" + strconv.Itoa(n) + "件"
	}
	s += "，" + strconv.Itoa(o.Period.Days()) + "天租金"
	if o.Deposit() > 0 {
		s += "+押金"
	}
	return s + "（订单 " + o.No + "）"
}

func isAPIError(err error, status int, codes ...string) bool {
	var ae *wechatpay.APIError
	if !errors.As(err, &ae) || (status != 0 && ae.Status != status) {
		return false
	}
	if len(codes) == 0 {
		return true
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}

func payUpstream(op string, err error) error {
	return rental.Wrap(op, rental.KindUpstream, "微信支付暂时不可用，请稍后再试 (WeChat Pay did not answer; try again)", err)
}

// pay returns the wx.requestPayment parameters for the order's pending
// attempt, starting one if there is none. Paying again after closing the
// pay sheet resumes the same attempt (WeChat Pay returns the same
// prepay_id for the same parameters).
func (h *rentalHandlers) pay(c *fiber.Ctx) error {
	const op = "orders.pay"
	ctx := c.UserContext()
	r := h.r
	o, m, err := h.myOrderOf(c)
	if err != nil {
		return err
	}
	if r.Pay == nil {
		return rental.Errorf(op, rental.KindUnavailable, "微信支付未开通 (WeChat Pay is off)")
	}
	identity, _ := caller(c).IdentityID()
	openid, err := r.DB.PayerOpenID(ctx, m.ID, r.AppID, identity)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		var p rental.Payment
		o, err = r.update(ctx, o.ID, func(_ *store.DB, o *rental.Order) (bool, error) {
			var err error
			p, err = o.StartPayment(rental.MemberActor(m.ID), r.now())
			return err == nil && p.ID == 0, err // a stored pending attempt is resumed as it is
		})
		if err != nil {
			return err
		}
		prepayID, err := r.Pay.PrepayJSAPI(ctx, wechatpay.PrepayRequest{
			AppID: r.AppID, Description: describe(o), OutTradeNo: p.OutTradeNo, TimeExpire: o.ExpiresAt.In(rental.Shanghai()),
			Attach: o.No, NotifyURL: r.NotifyURL, Total: int64(p.Amount), PayerOpenID: openid,
		})
		switch {
		case err == nil:
		case attempt == 0 && isAPIError(err, 0, "ORDER_CLOSED", "OUT_TRADE_NO_USED"):
			// This out_trade_no can no longer be paid (closed, or made with
			// other parameters — another WeChat of the same member): close
			// it and start a new attempt with a new number.
			Logger(c).Info("payment attempt unusable at WeChat Pay; starting a new one", "order", o.ID, "out_trade_no", p.OutTradeNo, "error", err)
			if cerr := r.Pay.Close(ctx, p.OutTradeNo); cerr != nil && !isAPIError(cerr, http.StatusNotFound) {
				return payUpstream(op, cerr)
			}
			if err := r.endAttempt(ctx, store.PaymentRef{OrderID: o.ID, No: p.OutTradeNo}, rental.PaymentClosed, false); err != nil {
				return err
			}
			continue
		case isAPIError(err, http.StatusBadRequest, "INVALID_REQUEST", "ORDERPAID"):
			// Probably paid already: believe WeChat Pay's own record.
			if qerr := r.checkPayment(ctx, store.PaymentRef{OrderID: o.ID, No: p.OutTradeNo}); qerr != nil {
				return payUpstream(op, qerr)
			}
			if o, err = r.DB.Order(ctx, o.ID); err != nil {
				return err
			}
			return h.orderOut(c, fiber.StatusOK, o, fiber.Map{"paid": o.State == rental.StatePaid})
		default:
			return payUpstream(op, err)
		}
		params, err := r.Pay.RequestPayment(r.AppID, prepayID)
		if err != nil {
			return rental.Wrap(op, rental.KindInternal, "", err)
		}
		Logger(c).Info("payment started", "order", o.ID, "out_trade_no", p.OutTradeNo, "amount", int64(p.Amount))
		return h.orderOut(c, fiber.StatusOK, o, fiber.Map{
			"payment":         paymentView{OutTradeNo: p.OutTradeNo, Amount: p.Amount, State: p.State, CreatedAt: shanghaiTime(p.CreatedAt)},
			"request_payment": params,
		})
	}
}

// payCheck is what the mini-program calls after wx.requestPayment reports
// success: that callback proves nothing, so ask WeChat Pay now instead of
// waiting for the notification.
func (h *rentalHandlers) payCheck(c *fiber.Ctx) error {
	ctx := c.UserContext()
	o, _, err := h.myOrderOf(c)
	if err != nil {
		return err
	}
	if h.r.Pay == nil {
		return rental.Errorf("orders.payCheck", rental.KindUnavailable, "微信支付未开通 (WeChat Pay is off)")
	}
	for _, p := range o.Payments {
		if p.State == rental.PaymentPending {
			if err := h.r.checkPayment(ctx, store.PaymentRef{OrderID: o.ID, No: p.OutTradeNo}); err != nil {
				return payUpstream("orders.payCheck", err)
			}
		}
	}
	if o, err = h.r.DB.Order(ctx, o.ID); err != nil {
		return err
	}
	return h.orderOut(c, fiber.StatusOK, o, fiber.Map{"paid": o.PaidTotal() >= o.Total() && o.PaidTotal() > 0})
}

// eventTime is when WeChat Pay says something happened, when that is
// believable (after the order was made, not in the future); else now.
func (r *Rental) eventTime(t time.Time, o *rental.Order) time.Time {
	now := r.now()
	if t.IsZero() || t.After(now.Add(5*time.Minute)) || t.Before(o.CreatedAt) {
		return now
	}
	return t.UTC()
}

func (r *Rental) anomaly(ctx context.Context, tx *store.DB, a store.PayAnomaly) error {
	r.log.Warn("payment anomaly", "kind", a.Kind, "order", a.OrderID, "out_trade_no", a.OutTradeNo, "out_refund_no", a.OutRefundNo,
		"amount", int64(a.Amount), "expected", int64(a.Expected), "detail", a.Detail)
	return tx.RecordPayAnomaly(ctx, a)
}

// applyTransaction records what WeChat Pay says about a paid attempt — from
// a notification or a query — on its order, in tx. The amount, mchid and
// appid must be ours; a repeat changes nothing; money for an order that no
// longer wants it is refunded.
func (r *Rental) applyTransaction(ctx context.Context, tx *store.DB, t *wechatpay.Transaction, source string) error {
	no := t.OutTradeNo
	a := store.PayAnomaly{Source: source, OutTradeNo: no, Amount: rental.Fen(t.Amount.Total)}
	if r.Pay != nil && t.MchID != r.Pay.MchID() {
		a.Kind, a.Key, a.Detail = store.AnomalyForeignMerchant, "foreign_merchant:"+no, "mchid "+t.MchID
		return r.anomaly(ctx, tx, a)
	}
	if t.AppID != r.AppID {
		a.Kind, a.Key, a.Detail = store.AnomalyForeignApp, "foreign_app:"+no, "appid "+t.AppID
		return r.anomaly(ctx, tx, a)
	}
	found, err := tx.OrderByOutTradeNo(ctx, no)
	if rental.ErrorKind(err) == rental.KindNotFound {
		a.Kind, a.Key, a.Detail = store.AnomalyUnknownTrade, "unknown_trade:"+no, "transaction "+t.TransactionID
		return r.anomaly(ctx, tx, a)
	}
	if err != nil {
		return err
	}
	a.OrderID = found.ID
	_, err = r.updateInTx(ctx, tx, found.ID, func(tx *store.DB, o *rental.Order) (bool, error) {
		var attempt rental.Payment
		for _, p := range o.Payments {
			if p.OutTradeNo == no {
				attempt = p
			}
		}
		if rental.Fen(t.Amount.Total) != attempt.Amount {
			a.Kind, a.Key, a.Expected = store.AnomalyAmountMismatch, "amount_mismatch:"+no, attempt.Amount
			return false, r.anomaly(ctx, tx, a)
		}
		outcome, err := o.PaymentSucceeded(no, t.TransactionID, rental.Fen(t.Amount.Total), r.eventTime(t.SuccessTime, o))
		if err != nil {
			return false, err
		}
		switch outcome {
		case rental.PaymentDuplicate:
			return false, nil
		case rental.PaymentOrphaned:
			a.Kind, a.Key, a.Expected = store.AnomalyOrphanedPayment, "orphaned:"+no, 0
			a.Detail = "订单状态为 " + string(o.State) + "，款项自动退回 (order is " + string(o.State) + "; refunded)"
			if err := r.anomaly(ctx, tx, a); err != nil {
				return false, err
			}
			if o.RefundDue() > 0 {
				return true, r.startRefunds(ctx, tx, o, "订单已"+o.State.Label()+"，退回付款")
			}
		case rental.PaymentApplied:
			r.log.Info("order paid", "order", o.ID, "out_trade_no", no, "source", source)
		}
		return true, nil
	})
	return err
}

// applyRefund records a refund's outcome (SUCCESS, CLOSED, ABNORMAL; others
// change nothing) on its order, in tx. A refund that completes the deposit
// refund of a returned order settles it.
func (r *Rental) applyRefund(ctx context.Context, tx *store.DB, orderID rental.OrderID, no, status, refundID string, at time.Time, amount int64, source string) error {
	_, err := r.updateInTx(ctx, tx, orderID, func(tx *store.DB, o *rental.Order) (bool, error) {
		var rf *rental.Refund
		for i := range o.Refunds {
			if o.Refunds[i].OutRefundNo == no {
				rf = &o.Refunds[i]
			}
		}
		a := store.PayAnomaly{Source: source, OrderID: o.ID, OutRefundNo: no, Amount: rental.Fen(amount)}
		if rf == nil {
			a.Kind, a.Key = store.AnomalyUnknownRefund, "unknown_refund:"+no
			return false, r.anomaly(ctx, tx, a)
		}
		a.OutTradeNo, a.Expected = rf.OutTradeNo, rf.Amount
		switch status {
		case wechatpay.RefundStatusSuccess:
			if amount != 0 && rental.Fen(amount) != rf.Amount {
				a.Kind, a.Key = store.AnomalyRefundMismatch, "refund_mismatch:"+no
				return false, r.anomaly(ctx, tx, a)
			}
			changed, err := o.RefundSucceeded(no, refundID, r.eventTime(at, o))
			if changed {
				r.log.Info("refund succeeded", "order", o.ID, "out_refund_no", no, "state", o.State, "source", source)
			}
			return changed, err
		case wechatpay.RefundStatusClosed, wechatpay.RefundStatusAbnormal:
			if rf.State != rental.RefundPending {
				return false, nil
			}
			a.Kind, a.Key, a.Detail = store.AnomalyRefundFailed, "refund_failed:"+no, "退款 "+status+"，请在商户平台处理后重新退款 (retry with POST /owner/orders/:id/refund)"
			if err := r.anomaly(ctx, tx, a); err != nil {
				return false, err
			}
			return true, o.RefundFailed(no, r.now())
		}
		return false, nil
	})
	return err
}

// applyNotification carries out one stored WeChat Pay notification in tx.
func (r *Rental) applyNotification(ctx context.Context, tx *store.DB, in *rental.Inbound) error {
	source := "inbound:" + strconv.FormatInt(in.ID, 10)
	bad := func(detail string) error {
		return r.anomaly(ctx, tx, store.PayAnomaly{Kind: store.AnomalyProcessing, Key: source, Source: source, Detail: detail})
	}
	switch in.Kind {
	case wechatpay.EventTransactionSuccess:
		var t wechatpay.Transaction
		if err := json.Unmarshal(in.Payload, &t); err != nil {
			return bad("transaction does not parse: " + err.Error())
		}
		if t.TradeState != wechatpay.TradeStateSuccess {
			return r.anomaly(ctx, tx, store.PayAnomaly{Kind: store.AnomalyNotSuccess, Key: source, Source: source, OutTradeNo: t.OutTradeNo,
				Amount: rental.Fen(t.Amount.Total), Detail: "trade_state " + t.TradeState})
		}
		return r.applyTransaction(ctx, tx, &t, source)
	case wechatpay.EventRefundSuccess, wechatpay.EventRefundAbnormal, wechatpay.EventRefundClosed:
		var n wechatpay.RefundNotice
		if err := json.Unmarshal(in.Payload, &n); err != nil {
			return bad("refund does not parse: " + err.Error())
		}
		a := store.PayAnomaly{Source: source, OutTradeNo: n.OutTradeNo, OutRefundNo: n.OutRefundNo, Amount: rental.Fen(n.Amount.Refund)}
		if r.Pay != nil && n.MchID != r.Pay.MchID() {
			a.Kind, a.Key, a.Detail = store.AnomalyForeignMerchant, "foreign_merchant:"+n.OutRefundNo, "mchid "+n.MchID
			return r.anomaly(ctx, tx, a)
		}
		o, err := tx.OrderByOutRefundNo(ctx, n.OutRefundNo)
		if rental.ErrorKind(err) == rental.KindNotFound {
			a.Kind, a.Key = store.AnomalyUnknownRefund, "unknown_refund:"+n.OutRefundNo
			return r.anomaly(ctx, tx, a)
		}
		if err != nil {
			return err
		}
		status := n.RefundStatus
		if status == "" {
			status = map[string]string{wechatpay.EventRefundSuccess: wechatpay.RefundStatusSuccess,
				wechatpay.EventRefundAbnormal: wechatpay.RefundStatusAbnormal, wechatpay.EventRefundClosed: wechatpay.RefundStatusClosed}[in.Kind]
		}
		return r.applyRefund(ctx, tx, o.ID, n.OutRefundNo, status, n.RefundID, n.SuccessTime, n.Amount.Refund, source)
	}
	r.log.Info("WeChat Pay notification of a type tacklegate does not handle", "kind", in.Kind, "inbound", in.ID)
	return nil
}

// ProcessNotifications applies the stored WeChat Pay notifications not
// processed yet and returns how many it processed. A notification that
// fails is tried again on the next call, up to MaxNotifyAttempts times, and
// then set aside as an anomaly.
func (r *Rental) ProcessNotifications(ctx context.Context) (int, error) {
	r.init()
	ids, err := r.DB.PendingPayNotifications(ctx, 50)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		done, err := r.DB.ProcessInbound(ctx, id, func(tx *store.DB, in *rental.Inbound) error {
			return r.applyNotification(ctx, tx, in)
		})
		if err == nil {
			if done {
				n++
			}
			continue
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		attempts, aerr := r.DB.InboundAttempts(ctx, id)
		giveUp := aerr == nil && attempts+1 >= r.Timings.MaxNotifyAttempts
		if ferr := r.DB.InboundAttemptFailed(ctx, id, err.Error(), giveUp); ferr != nil {
			r.log.Error("cannot record a failed notification", "inbound", id, "error", ferr)
		}
		if giveUp {
			src := "inbound:" + strconv.FormatInt(id, 10)
			if aerr := r.DB.RecordPayAnomaly(ctx, store.PayAnomaly{Kind: store.AnomalyProcessing, Key: src, Source: src, Detail: err.Error()}); aerr != nil {
				r.log.Error("cannot record an anomaly", "inbound", id, "error", aerr)
			}
			r.log.Error("WeChat Pay notification set aside after repeated failures; the payment sync and reconciliation still see its order", "inbound", id, "error", err)
		} else {
			r.log.Warn("WeChat Pay notification not processed; will retry", "inbound", id, "attempt", attempts+1, "error", err)
		}
	}
	return n, nil
}

// endAttempt records that an attempt is over at WeChat Pay. With ifDone,
// only when its order no longer waits for payment.
func (r *Rental) endAttempt(ctx context.Context, ref store.PaymentRef, state rental.PaymentState, ifDone bool) error {
	_, err := r.update(ctx, ref.OrderID, func(_ *store.DB, o *rental.Order) (bool, error) {
		if ifDone && o.State.Unpaid() && r.now().Before(o.ExpiresAt) {
			return false, nil
		}
		for _, p := range o.Payments {
			if p.OutTradeNo == ref.No && p.State == rental.PaymentPending {
				return true, o.PaymentEnded(ref.No, state, r.now())
			}
		}
		return false, nil
	})
	return err
}

// checkPayment asks WeChat Pay about one pending attempt and records the
// answer: paid (applied like a notification), closed or failed (ended), or
// not paid — then, when the order no longer waits for it, closed at WeChat
// Pay first.
func (r *Rental) checkPayment(ctx context.Context, ref store.PaymentRef) error {
	t, err := r.Pay.QueryByOutTradeNo(ctx, ref.No)
	if isAPIError(err, http.StatusNotFound) {
		// The prepay never reached WeChat Pay: nothing to close there.
		return r.endAttempt(ctx, ref, rental.PaymentClosed, true)
	}
	if err != nil {
		return err
	}
	switch t.TradeState {
	case wechatpay.TradeStateSuccess, wechatpay.TradeStateRefund:
		return r.DB.InTx(ctx, func(tx *store.DB) error { return r.applyTransaction(ctx, tx, t, "query") })
	case wechatpay.TradeStateClosed, wechatpay.TradeStateRevoked:
		return r.endAttempt(ctx, ref, rental.PaymentClosed, false)
	case wechatpay.TradeStatePayError:
		return r.endAttempt(ctx, ref, rental.PaymentFailed, false)
	}
	o, err := r.DB.Order(ctx, ref.OrderID)
	if err != nil {
		return err
	}
	if o.State.Unpaid() && r.now().Before(o.ExpiresAt) {
		return nil // the customer may still pay
	}
	if err := r.Pay.Close(ctx, ref.No); err != nil {
		return err // paid in the meantime, perhaps: the next check sees it
	}
	return r.endAttempt(ctx, ref, rental.PaymentClosed, false)
}

// checkRefund asks WeChat Pay about one pending refund.
func (r *Rental) checkRefund(ctx context.Context, ref store.PaymentRef) error {
	rf, err := r.Pay.QueryRefund(ctx, ref.No)
	if isAPIError(err, http.StatusNotFound) {
		return nil // not sent yet: the outbox sends it, or it waits in the dead-letter list
	}
	if err != nil {
		return err
	}
	return r.DB.InTx(ctx, func(tx *store.DB) error {
		return r.applyRefund(ctx, tx, ref.OrderID, ref.No, rf.Status, rf.RefundID, rf.SuccessTime, rf.Amount.Refund, "query")
	})
}

// Sync is one round of the payment timers: unpaid orders past their time
// expire (their units freed) and their attempts are closed at WeChat Pay;
// attempts and refunds whose notification is late are looked up.
func (r *Rental) Sync(ctx context.Context) error {
	r.init()
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	var errs []error
	expired, err := r.shop.ExpireUnpaid(ctx, 100)
	if err != nil {
		errs = append(errs, err)
	}
	for _, o := range expired {
		r.log.Info("unpaid order expired", "order", o.ID)
	}
	if r.Pay == nil {
		return errors.Join(errs...)
	}
	before := r.now().Add(-r.Timings.QueryAfter)
	payments, err := r.DB.PaymentsToCheck(ctx, before, 50)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ref := range payments {
		if err := r.checkPayment(ctx, ref); err != nil {
			errs = append(errs, err)
			r.log.Warn("checking a payment with WeChat Pay failed; next round retries", "order", ref.OrderID, "out_trade_no", ref.No, "error", err)
		}
	}
	refunds, err := r.DB.RefundsToCheck(ctx, before, 50)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ref := range refunds {
		if err := r.checkRefund(ctx, ref); err != nil {
			errs = append(errs, err)
			r.log.Warn("checking a refund with WeChat Pay failed; next round retries", "order", ref.OrderID, "out_refund_no", ref.No, "error", err)
		}
	}
	return errors.Join(errs...)
}

// Run processes notifications and runs Sync on their timers until ctx
// ends.
func (r *Rental) Run(ctx context.Context) {
	r.init()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.Timings.NotifyPoll)
		defer t.Stop()
		for {
			if _, err := r.ProcessNotifications(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("processing WeChat Pay notifications failed", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-r.kick:
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.Timings.SyncEvery)
		defer t.Stop()
		for {
			if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("payment sync round had failures", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
}

// WatchInbound wraps the callbacks' store so that a newly stored WeChat
// Pay notification is processed at once rather than at the next poll.
func (r *Rental) WatchInbound(next rental.InboundStore) rental.InboundStore {
	r.init()
	return &watchedInbound{InboundStore: next, r: r}
}

type watchedInbound struct {
	rental.InboundStore
	r *Rental
}

func (w *watchedInbound) SaveInbound(ctx context.Context, in *rental.Inbound) (bool, error) {
	created, err := w.InboundStore.SaveInbound(ctx, in)
	if err == nil && created && in.Channel == rental.ChannelWeChatPay {
		select {
		case w.r.kick <- struct{}{}:
		default:
		}
	}
	return created, err
}

// RefundDeliverer sends the refund requests of the outbox (KindRefund).
// WeChat Pay's answer is applied at once when final; PROCESSING waits for
// the REFUND.* notification or the payment sync. A refusal that retrying
// cannot fix goes to the dead-letter list, for the owner.
func (r *Rental) RefundDeliverer() store.Deliver {
	r.init()
	return func(ctx context.Context, it store.OutboxItem) error {
		var job refundJob
		if err := json.Unmarshal(it.Payload, &job); err != nil || job.OutRefundNo == "" {
			return &store.Permanent{Err: errors.New("refund message without out_refund_no")}
		}
		if r.Pay == nil {
			return &store.Permanent{Err: errors.New("WeChat Pay is off: the refund cannot be sent")}
		}
		o, err := r.DB.OrderByOutRefundNo(ctx, job.OutRefundNo)
		if rental.ErrorKind(err) == rental.KindNotFound {
			return &store.Permanent{Err: err}
		}
		if err != nil {
			return err
		}
		var rf *rental.Refund
		for i := range o.Refunds {
			if o.Refunds[i].OutRefundNo == job.OutRefundNo {
				rf = &o.Refunds[i]
			}
		}
		if rf == nil || rf.State != rental.RefundPending {
			return nil // settled meanwhile (a query or a notification got there first)
		}
		reason := rf.Reason
		if utf8.RuneCountInString(reason) > 80 {
			reason = string([]rune(reason)[:80])
		}
		res, err := r.Pay.Refund(ctx, wechatpay.RefundRequest{
			OutTradeNo: rf.OutTradeNo, OutRefundNo: rf.OutRefundNo, Reason: reason, NotifyURL: r.NotifyURL,
			Refund: int64(rf.Amount), Total: int64(rf.PaymentAmount),
		})
		var ae *wechatpay.APIError
		if errors.As(err, &ae) && !ae.Retryable() && ae.Status != http.StatusForbidden {
			// 400 PARAM_ERROR / INVALID_REQUEST, 404: resending the same
			// request cannot help. (403 NOT_ENOUGH passes when the balance
			// is topped up, so it is retried.)
			return &store.Permanent{Err: err}
		}
		if err != nil {
			return err
		}
		r.log.Info("refund requested", "order", o.ID, "out_refund_no", rf.OutRefundNo, "amount", int64(rf.Amount), "status", res.Status)
		if res.Status == wechatpay.RefundStatusProcessing {
			return nil
		}
		return r.DB.InTx(ctx, func(tx *store.DB) error {
			return r.applyRefund(ctx, tx, o.ID, rf.OutRefundNo, res.Status, res.RefundID, res.SuccessTime, res.Amount.Refund, "refund")
		})
	}
}
