package paysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Errors of the control methods (the outside world acting on the simulator).
var (
	ErrOrderNotFound  = errors.New("paysim: no such order")
	ErrRefundNotFound = errors.New("paysim: no such refund")
	ErrEventNotFound  = errors.New("paysim: no such notification event")
	// ErrNotPayable wraps why an order cannot be paid: already paid, closed,
	// prepay_id expired or not the order's current one.
	ErrNotPayable = errors.New("paysim: order cannot be paid")
	// ErrBadPaySign: the wx.requestPayment parameters do not verify with the
	// merchant public key.
	ErrBadPaySign = errors.New("paysim: paySign does not verify")
	// ErrRefundFinished: the refund is no longer PROCESSING.
	ErrRefundFinished = errors.New("paysim: refund already finished")
)

// PaymentParams are the wx.requestPayment parameters the merchant's server
// gave the mini-program. The JSON names are wx.requestPayment's.
type PaymentParams struct {
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// Pay is the customer confirming payment in the pay sheet. Like WeChat it
// checks the parameters the mini-program passed to wx.requestPayment: package
// must be "prepay_id=" + the order's current, unexpired prepay_id, signType
// "RSA", and paySign must verify over "appId\ntimeStamp\nnonceStr\npackage\n"
// with the merchant public key (§3.5). The order becomes SUCCESS and a
// TRANSACTION.SUCCESS notification is queued.
func (s *Server) Pay(outTradeNo string, p PaymentParams) error {
	if p.SignType != "RSA" {
		return fmt.Errorf("%w: signType %q, want RSA", ErrBadPaySign, p.SignType)
	}
	if p.TimeStamp == "" || strings.Trim(p.TimeStamp, "0123456789") != "" {
		return fmt.Errorf("%w: timeStamp %q is not unix seconds", ErrBadPaySign, p.TimeStamp)
	}
	if p.NonceStr == "" || len(p.NonceStr) > 32 {
		return fmt.Errorf("%w: nonceStr must be 1–32 characters", ErrBadPaySign)
	}
	msg := s.cfg.AppID + "\n" + p.TimeStamp + "\n" + p.NonceStr + "\n" + p.Package + "\n"
	if err := s.verifyMerchant([]byte(msg), p.PaySign); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPaySign, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	o := s.orders[outTradeNo]
	if o == nil {
		return fmt.Errorf("%w: %s", ErrOrderNotFound, outTradeNo)
	}
	o.refresh(now)
	switch {
	case o.paid():
		return fmt.Errorf("%w: %s is already paid", ErrNotPayable, outTradeNo)
	case o.state == stateClosed:
		return fmt.Errorf("%w: %s is closed (%s)", ErrNotPayable, outTradeNo, o.closeReason)
	case p.Package != "prepay_id="+o.prepayID:
		return fmt.Errorf("%w: package %q is not this order's current prepay_id", ErrNotPayable, p.Package)
	case now.Sub(o.prepayAt) >= prepayTTL:
		return fmt.Errorf("%w: prepay_id expired (valid %s)", ErrNotPayable, prepayTTL)
	}
	o.state = stateSuccess
	o.successTime = now
	o.abandoned = false
	o.transactionID = "4200" + now.In(time.FixedZone("CST", 8*60*60)).Format("20060102") + s.randString(16, digits)
	s.byTxn[o.transactionID] = o
	plaintext, _ := json.Marshal(s.transactionJSON(o))
	s.enqueueLocked("TRANSACTION.SUCCESS", "支付成功", "transaction", plaintext, o.notifyURL, o.outTradeNo, "", now)
	s.log.Info("order paid", "out_trade_no", o.outTradeNo, "transaction_id", o.transactionID)
	return nil
}

// Abandon is the customer closing the pay sheet: nothing is sent to the
// merchant (WeChat Pay notifies only successful payments); the order stays
// NOTPAY until it is closed or expires.
func (s *Server) Abandon(outTradeNo string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[outTradeNo]
	if o == nil {
		return fmt.Errorf("%w: %s", ErrOrderNotFound, outTradeNo)
	}
	o.refresh(s.now())
	if o.state == stateNotPay {
		o.abandoned = true
	}
	return nil
}

// CompleteRefunds finishes every PROCESSING refund now, as if its delay had
// passed, and returns how many it finished.
func (s *Server) CompleteRefunds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, n := s.now(), 0
	for _, o := range s.ordered {
		for _, rf := range o.refunds {
			if rf.status == refundProcessing {
				s.finishRefundLocked(rf, refundSuccess, now)
				n++
			}
		}
	}
	return n
}

// FailRefund makes a PROCESSING refund ABNORMAL (e.g. the payer's card was
// cancelled) and queues REFUND.ABNORMAL.
func (s *Server) FailRefund(outRefundNo string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rf := s.refunds[outRefundNo]
	if rf == nil {
		return fmt.Errorf("%w: %s", ErrRefundNotFound, outRefundNo)
	}
	if rf.status != refundProcessing {
		return fmt.Errorf("%w: %s is %s", ErrRefundFinished, outRefundNo, rf.status)
	}
	s.finishRefundLocked(rf, refundAbnormal, s.now())
	return nil
}

// Redeliver sends an already delivered notification once more, as WeChat Pay
// may: the same envelope, freshly signed.
func (s *Server) Redeliver(eventID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.events[eventID]
	if j == nil {
		return fmt.Errorf("%w: %s", ErrEventNotFound, eventID)
	}
	if j.inFlight {
		// Its outcome would overwrite the request; the caller can retry.
		return fmt.Errorf("paysim: event %s is being delivered right now; try again", eventID)
	}
	if j.done {
		j.done = false
		s.jobs = append(s.jobs, j)
	}
	j.duplicate = j.delivered
	j.next = s.now()
	s.kick()
	return nil
}

// SetAvailableBalance sets the merchant's available balance for refunds in
// fen; a refund larger than it fails with 403 NOT_ENOUGH. Negative means
// unlimited, the default.
func (s *Server) SetAvailableBalance(fen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.balance = fen
}

// OrderView is an order as the simulator sees it.
type OrderView struct {
	OutTradeNo    string       `json:"out_trade_no"`
	TransactionID string       `json:"transaction_id,omitempty"`
	PrepayID      string       `json:"prepay_id"`
	AppID         string       `json:"appid"`
	Description   string       `json:"description"`
	OpenID        string       `json:"openid"`
	Total         int64        `json:"total"`
	TradeState    string       `json:"trade_state"`
	Attach        string       `json:"attach,omitempty"`
	NotifyURL     string       `json:"notify_url"`
	CreatedAt     time.Time    `json:"created_at"`
	TimeExpire    time.Time    `json:"time_expire,omitzero"`
	SuccessTime   time.Time    `json:"success_time,omitzero"`
	ClosedAt      time.Time    `json:"closed_at,omitzero"`
	CloseReason   string       `json:"close_reason,omitempty"`
	Abandoned     bool         `json:"abandoned,omitempty"`
	Refunds       []RefundView `json:"refunds,omitempty"`
}

// RefundView is a refund as the simulator sees it.
type RefundView struct {
	OutRefundNo string    `json:"out_refund_no"`
	RefundID    string    `json:"refund_id"`
	Refund      int64     `json:"refund"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	SuccessTime time.Time `json:"success_time,omitzero"`
}

// Orders lists every order in creation order.
func (s *Server) Orders() []OrderView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	now := s.now()
	out := make([]OrderView, 0, len(s.ordered))
	for _, o := range s.ordered {
		o.refresh(now)
		v := OrderView{
			OutTradeNo: o.outTradeNo, TransactionID: o.transactionID, PrepayID: o.prepayID, AppID: o.appID,
			Description: o.description, OpenID: o.openID, Total: o.total, TradeState: o.state, Attach: o.attach,
			NotifyURL: o.notifyURL, CreatedAt: o.createdAt, TimeExpire: o.timeExpire, SuccessTime: o.successTime,
			ClosedAt: o.closedAt, CloseReason: o.closeReason, Abandoned: o.abandoned,
		}
		for _, rf := range o.refunds {
			v.Refunds = append(v.Refunds, RefundView{OutRefundNo: rf.outRefundNo, RefundID: rf.refundID, Refund: rf.amount,
				Status: rf.status, Reason: rf.reason, CreatedAt: rf.createdAt, SuccessTime: rf.successTime})
		}
		out = append(out, v)
	}
	return out
}

// Notifications lists every delivery attempt so far, oldest first.
func (s *Server) Notifications() []NotifyAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]NotifyAttempt, 0, len(s.attempts)), s.attempts...)
}

// controlRoutes serves the control methods as JSON under /control/. Errors
// are {"error":{"code","message"}}, the project's error shape.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /control/pay", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			OutTradeNo string `json:"out_trade_no"`
			PaymentParams
			// The snake_case spellings are accepted too.
			Timestamp string `json:"timestamp"`
			Nonce     string `json:"nonce_str"`
			SignTypeS string `json:"sign_type"`
			PaySignS  string `json:"pay_sign"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		p := in.PaymentParams
		p.TimeStamp = firstNonEmpty(p.TimeStamp, in.Timestamp)
		p.NonceStr = firstNonEmpty(p.NonceStr, in.Nonce)
		p.SignType = firstNonEmpty(p.SignType, in.SignTypeS, "RSA")
		p.PaySign = firstNonEmpty(p.PaySign, in.PaySignS)
		if err := s.Pay(in.OutTradeNo, p); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": in.OutTradeNo, "trade_state": stateSuccess})
	})
	mux.HandleFunc("POST /control/abandon", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			OutTradeNo string `json:"out_trade_no"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.Abandon(in.OutTradeNo); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": in.OutTradeNo})
	})
	mux.HandleFunc("GET /control/orders", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"orders": s.Orders()})
	})
	mux.HandleFunc("GET /control/notifications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"attempts": s.Notifications()})
	})
	mux.HandleFunc("POST /control/notifications/redeliver", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ID string `json:"id"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.Redeliver(in.ID); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": in.ID})
	})
	mux.HandleFunc("POST /control/refunds/complete", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"completed": s.CompleteRefunds()})
	})
	mux.HandleFunc("POST /control/refunds/abnormal", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			OutRefundNo string `json:"out_refund_no"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.FailRefund(in.OutRefundNo); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"out_refund_no": in.OutRefundNo, "status": refundAbnormal})
	})
	mux.HandleFunc("POST /control/balance", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Available *int64 `json:"available"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		if in.Available == nil {
			writeJSON(w, http.StatusBadRequest, controlErrorBody("invalid", "available (fen, -1 for unlimited) is required"))
			return
		}
		s.SetAvailableBalance(*in.Available)
		writeJSON(w, http.StatusOK, map[string]int64{"available": *in.Available})
	})
	mux.HandleFunc("GET /control/platform-key", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"serial": s.PlatformSerial(), "public_key_pem": string(s.PlatformPublicKeyPEM())})
	})
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, controlErrorBody("invalid", "body is not the expected JSON: "+err.Error()))
		return false
	}
	return true
}

// controlError maps the control errors to statuses.
func controlError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, ErrOrderNotFound), errors.Is(err, ErrRefundNotFound), errors.Is(err, ErrEventNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrNotPayable), errors.Is(err, ErrRefundFinished):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, ErrBadPaySign):
		status, code = http.StatusBadRequest, "invalid"
	}
	writeJSON(w, status, controlErrorBody(code, err.Error()))
}

func controlErrorBody(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
