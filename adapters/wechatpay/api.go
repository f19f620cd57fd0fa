package wechatpay

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PrepayJSAPI creates (or, with the same parameters, re-fetches) a JSAPI /
// mini-program order and returns its prepay_id, valid for 2 hours.
func (c *Client) PrepayJSAPI(ctx context.Context, r PrepayRequest) (string, error) {
	type amount struct {
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	}
	type sceneInfo struct {
		PayerClientIP string `json:"payer_client_ip"`
	}
	body := struct {
		AppID       string     `json:"appid"`
		MchID       string     `json:"mchid"`
		Description string     `json:"description"`
		OutTradeNo  string     `json:"out_trade_no"`
		TimeExpire  string     `json:"time_expire,omitempty"`
		Attach      string     `json:"attach,omitempty"`
		NotifyURL   string     `json:"notify_url"`
		GoodsTag    string     `json:"goods_tag,omitempty"`
		Amount      amount     `json:"amount"`
		Payer       Payer      `json:"payer"`
		SceneInfo   *sceneInfo `json:"scene_info,omitempty"`
	}{
		AppID:       r.AppID,
		MchID:       c.mchID,
		Description: r.Description,
		OutTradeNo:  r.OutTradeNo,
		Attach:      r.Attach,
		NotifyURL:   r.NotifyURL,
		GoodsTag:    r.GoodsTag,
		Amount:      amount{Total: r.Total, Currency: currencyOrCNY(r.Currency)},
		Payer:       Payer{OpenID: r.PayerOpenID},
	}
	if !r.TimeExpire.IsZero() {
		body.TimeExpire = r.TimeExpire.Format(time.RFC3339)
	}
	if r.PayerClientIP != "" {
		body.SceneInfo = &sceneInfo{PayerClientIP: r.PayerClientIP}
	}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/v3/pay/transactions/jsapi", nil, body, &out); err != nil {
		return "", err
	}
	if out.PrepayID == "" {
		return "", errors.New("wechatpay: jsapi prepay: answer has no prepay_id")
	}
	return out.PrepayID, nil
}

// RequestPayment signs the parameters the mini-program passes to
// wx.requestPayment: paySign = SHA256withRSA over
// "appId\ntimeStamp\nnonceStr\npackage\n". appID is signed but not returned:
// a mini-program does not pass it to wx.requestPayment.
func (c *Client) RequestPayment(appID, prepayID string) (PaymentParams, error) {
	if appID == "" || prepayID == "" {
		return PaymentParams{}, errors.New("wechatpay: request payment: appID and prepayID are required")
	}
	return c.paymentParams(appID, prepayID, strconv.FormatInt(c.now().Unix(), 10), newNonce())
}

// paymentParams signs with a given timestamp and nonce (the published
// example's, in tests).
func (c *Client) paymentParams(appID, prepayID, timeStamp, nonce string) (PaymentParams, error) {
	p := PaymentParams{TimeStamp: timeStamp, NonceStr: nonce, Package: "prepay_id=" + prepayID, SignType: "RSA"}
	msg := appID + "\n" + p.TimeStamp + "\n" + p.NonceStr + "\n" + p.Package + "\n"
	sig, err := signSHA256WithRSA(c.key, []byte(msg))
	if err != nil {
		return PaymentParams{}, err
	}
	p.PaySign = sig
	return p, nil
}

// QueryByOutTradeNo returns the order with our order number; it works for
// unpaid orders too. An unknown order is an *APIError with Status 404 and Code
// ORDER_NOT_EXIST.
func (c *Client) QueryByOutTradeNo(ctx context.Context, outTradeNo string) (*Transaction, error) {
	if outTradeNo == "" {
		return nil, errors.New("wechatpay: query: out_trade_no is empty")
	}
	var t Transaction
	path := "/v3/pay/transactions/out-trade-no/" + url.PathEscape(outTradeNo)
	if err := c.do(ctx, http.MethodGet, path, url.Values{"mchid": {c.mchID}}, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// QueryByTransactionID returns a paid order by WeChat Pay's transaction_id.
func (c *Client) QueryByTransactionID(ctx context.Context, transactionID string) (*Transaction, error) {
	if transactionID == "" {
		return nil, errors.New("wechatpay: query: transaction_id is empty")
	}
	var t Transaction
	path := "/v3/pay/transactions/id/" + url.PathEscape(transactionID)
	if err := c.do(ctx, http.MethodGet, path, url.Values{"mchid": {c.mchID}}, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Close closes an unpaid order (answer: 204 No Content, still signed). Close
// an abandoned order before issuing a new out_trade_no for the same rental.
func (c *Client) Close(ctx context.Context, outTradeNo string) error {
	if outTradeNo == "" {
		return errors.New("wechatpay: close: out_trade_no is empty")
	}
	path := "/v3/pay/transactions/out-trade-no/" + url.PathEscape(outTradeNo) + "/close"
	body := struct {
		MchID string `json:"mchid"`
	}{c.mchID}
	return c.do(ctx, http.MethodPost, path, nil, body, nil)
}

// Refund asks for a (partial) refund. The answer is usually PROCESSING; the
// outcome arrives as a REFUND.* notification or through QueryRefund.
func (c *Client) Refund(ctx context.Context, r RefundRequest) (*Refund, error) {
	type amount struct {
		Refund   int64  `json:"refund"`
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	}
	body := struct {
		TransactionID string `json:"transaction_id,omitempty"`
		OutTradeNo    string `json:"out_trade_no,omitempty"`
		OutRefundNo   string `json:"out_refund_no"`
		Reason        string `json:"reason,omitempty"`
		NotifyURL     string `json:"notify_url,omitempty"`
		FundsAccount  string `json:"funds_account,omitempty"`
		Amount        amount `json:"amount"`
	}{
		TransactionID: r.TransactionID,
		OutTradeNo:    r.OutTradeNo,
		OutRefundNo:   r.OutRefundNo,
		Reason:        r.Reason,
		NotifyURL:     r.NotifyURL,
		FundsAccount:  r.FundsAccount,
		Amount:        amount{Refund: r.Refund, Total: r.Total, Currency: currencyOrCNY(r.Currency)},
	}
	var out Refund
	if err := c.do(ctx, http.MethodPost, "/v3/refund/domestic/refunds", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// QueryRefund returns the refund with our refund number.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (*Refund, error) {
	if outRefundNo == "" {
		return nil, errors.New("wechatpay: query refund: out_refund_no is empty")
	}
	var out Refund
	path := "/v3/refund/domestic/refunds/" + url.PathEscape(outRefundNo)
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func currencyOrCNY(s string) string {
	if s == "" {
		return "CNY"
	}
	return s
}
