package wechatpay

import (
	"encoding/json"
	"fmt"
	"time"
)

// Trade states of a Transaction (trade_state).
const (
	TradeStateSuccess    = "SUCCESS"    // paid
	TradeStateRefund     = "REFUND"     // paid, then (partly) refunded
	TradeStateNotPay     = "NOTPAY"     // not paid yet
	TradeStateClosed     = "CLOSED"     // closed by the merchant or by time_expire
	TradeStateRevoked    = "REVOKED"    // payment-code only
	TradeStateUserPaying = "USERPAYING" // payment-code only
	TradeStatePayError   = "PAYERROR"   // payment failed
)

// Refund statuses (status / refund_status).
const (
	RefundStatusSuccess    = "SUCCESS"
	RefundStatusClosed     = "CLOSED"
	RefundStatusProcessing = "PROCESSING"
	RefundStatusAbnormal   = "ABNORMAL" // needs manual handling in the merchant console
)

// Notification event types (event_type).
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"
)

// PrepayRequest is a JSAPI / mini-program order (POST /v3/pay/transactions/jsapi).
// The client adds mchid. WeChat Pay validates the fields; the client does not
// second-guess it, so its error codes reach the caller unchanged.
type PrepayRequest struct {
	AppID       string    // mini-program AppID bound to the merchant
	Description string    // ≤127 characters, shown to the payer
	OutTradeNo  string    // 6–32 of [0-9A-Za-z_-|*], unique per merchant
	TimeExpire  time.Time // optional: after it the order can no longer be paid
	Attach      string    // optional, ≤128 characters, echoed in query and notify
	NotifyURL   string    // where TRANSACTION.SUCCESS is POSTed
	GoodsTag    string    // optional
	Total       int64     // fen, ≥1
	Currency    string    // optional, "CNY" when empty
	PayerOpenID string    // the payer's openid under AppID
	// PayerClientIP is optional scene_info.payer_client_ip.
	PayerClientIP string
}

// PaymentParams are what the mini-program passes to wx.requestPayment. The
// JSON names are the ones wx.requestPayment takes, so the gateway can hand the
// struct to the page as is.
type PaymentParams struct {
	TimeStamp string `json:"timeStamp"` // unix seconds, as a string
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`  // "prepay_id=…"
	SignType  string `json:"signType"` // "RSA"
	PaySign   string `json:"paySign"`
}

// Transaction is an order as WeChat Pay reports it, from a query or from the
// TRANSACTION.SUCCESS notification.
type Transaction struct {
	AppID           string            `json:"appid"`
	MchID           string            `json:"mchid"`
	OutTradeNo      string            `json:"out_trade_no"`
	TransactionID   string            `json:"transaction_id,omitempty"`
	TradeType       string            `json:"trade_type,omitempty"`
	TradeState      string            `json:"trade_state"`
	TradeStateDesc  string            `json:"trade_state_desc,omitempty"`
	BankType        string            `json:"bank_type,omitempty"`
	Attach          string            `json:"attach,omitempty"`
	SuccessTime     time.Time         `json:"-"` // zero until paid
	Payer           Payer             `json:"payer"`
	Amount          TransactionAmount `json:"amount"`
	PromotionDetail json.RawMessage   `json:"promotion_detail,omitempty"` // kept raw for reconciliation
}

// Payer identifies who paid.
type Payer struct {
	OpenID string `json:"openid"`
}

// TransactionAmount is the amount block of a Transaction, in fen.
type TransactionAmount struct {
	Total         int64  `json:"total"`
	PayerTotal    int64  `json:"payer_total,omitempty"`
	Currency      string `json:"currency,omitempty"`
	PayerCurrency string `json:"payer_currency,omitempty"`
}

// UnmarshalJSON reads success_time as RFC 3339; WeChat Pay omits it (or sends
// "") for unpaid orders.
func (t *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	var w struct {
		plain
		SuccessTime string `json:"success_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*t = Transaction(w.plain)
	var err error
	t.SuccessTime, err = parseOptionalTime("success_time", w.SuccessTime)
	return err
}

// RefundRequest is POST /v3/refund/domestic/refunds. Give TransactionID or
// OutTradeNo. OutRefundNo is the idempotency key: resending it never refunds
// twice.
type RefundRequest struct {
	TransactionID string
	OutTradeNo    string
	OutRefundNo   string // ≤64 characters, unique per merchant
	Reason        string // optional, ≤80 characters, shown to the payer
	NotifyURL     string // optional: where REFUND.* is POSTed
	FundsAccount  string // optional, e.g. "AVAILABLE"
	Refund        int64  // fen to refund now
	Total         int64  // fen, must equal the original order total
	Currency      string // optional, "CNY" when empty
}

// Refund is a refund as WeChat Pay reports it (create and query answers).
type Refund struct {
	RefundID            string          `json:"refund_id"`
	OutRefundNo         string          `json:"out_refund_no"`
	TransactionID       string          `json:"transaction_id"`
	OutTradeNo          string          `json:"out_trade_no"`
	Channel             string          `json:"channel,omitempty"`
	UserReceivedAccount string          `json:"user_received_account,omitempty"`
	SuccessTime         time.Time       `json:"-"`
	CreateTime          time.Time       `json:"-"`
	Status              string          `json:"status"`
	FundsAccount        string          `json:"funds_account,omitempty"`
	Amount              RefundAmount    `json:"amount"`
	PromotionDetail     json.RawMessage `json:"promotion_detail,omitempty"`
}

// RefundAmount is the amount block of a refund, in fen.
type RefundAmount struct {
	Total            int64  `json:"total"`
	Refund           int64  `json:"refund"`
	PayerTotal       int64  `json:"payer_total,omitempty"`
	PayerRefund      int64  `json:"payer_refund,omitempty"`
	SettlementRefund int64  `json:"settlement_refund,omitempty"`
	SettlementTotal  int64  `json:"settlement_total,omitempty"`
	DiscountRefund   int64  `json:"discount_refund,omitempty"`
	Currency         string `json:"currency,omitempty"`
}

// UnmarshalJSON reads create_time and success_time as RFC 3339.
func (r *Refund) UnmarshalJSON(b []byte) error {
	type plain Refund
	var w struct {
		plain
		SuccessTime string `json:"success_time"`
		CreateTime  string `json:"create_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Refund(w.plain)
	var err error
	if r.SuccessTime, err = parseOptionalTime("success_time", w.SuccessTime); err != nil {
		return err
	}
	r.CreateTime, err = parseOptionalTime("create_time", w.CreateTime)
	return err
}

// RefundNotice is the decrypted resource of a REFUND.* notification.
type RefundNotice struct {
	MchID               string             `json:"mchid"`
	OutTradeNo          string             `json:"out_trade_no"`
	TransactionID       string             `json:"transaction_id"`
	OutRefundNo         string             `json:"out_refund_no"`
	RefundID            string             `json:"refund_id"`
	RefundStatus        string             `json:"refund_status"`
	SuccessTime         time.Time          `json:"-"`
	UserReceivedAccount string             `json:"user_received_account,omitempty"`
	Amount              RefundNoticeAmount `json:"amount"`
}

// RefundNoticeAmount is the amount block of a refund notification, in fen.
type RefundNoticeAmount struct {
	Total       int64 `json:"total"`
	Refund      int64 `json:"refund"`
	PayerTotal  int64 `json:"payer_total"`
	PayerRefund int64 `json:"payer_refund"`
}

// UnmarshalJSON reads success_time as RFC 3339.
func (n *RefundNotice) UnmarshalJSON(b []byte) error {
	type plain RefundNotice
	var w struct {
		plain
		SuccessTime string `json:"success_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*n = RefundNotice(w.plain)
	var err error
	n.SuccessTime, err = parseOptionalTime("success_time", w.SuccessTime)
	return err
}

// Notification is a verified and decrypted WeChat Pay notification. Exactly
// one of Transaction and Refund is set for the event types this package knows;
// other event types (e.g. PAYSCORE.*) carry only Plaintext.
type Notification struct {
	ID           string // unique per event; repeated on retries — the dedup key
	CreateTime   time.Time
	EventType    string // TRANSACTION.SUCCESS, REFUND.SUCCESS, …
	Summary      string
	ResourceType string // "encrypt-resource"
	OriginalType string // resource.original_type: "transaction", "refund", …
	Transaction  *Transaction
	Refund       *RefundNotice
	Plaintext    []byte // the decrypted resource, for storage and reconciliation
}

// parseOptionalTime treats "" as "not set" and anything else as RFC 3339.
func parseOptionalTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("wechatpay: %s %q is not RFC 3339", field, s)
	}
	return t, nil
}
