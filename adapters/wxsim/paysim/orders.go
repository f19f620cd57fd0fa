package paysim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Trade states.
const (
	stateNotPay  = "NOTPAY"
	stateSuccess = "SUCCESS"
	stateRefund  = "REFUND"
	stateClosed  = "CLOSED"
)

// prepayTTL is how long a prepay_id can be used to pay.
const prepayTTL = 2 * time.Hour

// order is one out_trade_no. Guarded by Server.mu.
type order struct {
	appID, description, outTradeNo, attach, notifyURL, goodsTag, openID, currency string
	total                                                                         int64
	timeExpire                                                                    time.Time
	fingerprint                                                                   string // the parameters that must not change

	createdAt time.Time
	prepayID  string
	prepayAt  time.Time

	state         string
	transactionID string
	successTime   time.Time
	closedAt      time.Time
	closeReason   string
	abandoned     bool
	refunds       []*refund
}

// refresh applies time_expire: an unpaid order past it is closed (S17/S18).
func (o *order) refresh(now time.Time) {
	if o.state == stateNotPay && !o.timeExpire.IsZero() && !now.Before(o.timeExpire) {
		o.state = stateClosed
		o.closedAt = o.timeExpire
		o.closeReason = "time_expire"
	}
}

func (o *order) paid() bool { return o.state == stateSuccess || o.state == stateRefund }

// stateDesc is trade_state_desc.
func stateDesc(state string) string {
	switch state {
	case stateSuccess:
		return "支付成功"
	case stateRefund:
		return "转入退款"
	case stateClosed:
		return "已关闭"
	default:
		return "订单未支付"
	}
}

// transactionJSON is the Transaction of query answers and of the
// TRANSACTION.SUCCESS resource.
func (s *Server) transactionJSON(o *order) map[string]any {
	amount := map[string]any{"total": o.total, "currency": o.currency}
	t := map[string]any{
		"appid":            o.appID,
		"mchid":            s.cfg.MchID,
		"out_trade_no":     o.outTradeNo,
		"trade_type":       "JSAPI",
		"trade_state":      o.state,
		"trade_state_desc": stateDesc(o.state),
		"attach":           o.attach,
		"payer":            map[string]any{"openid": o.openID},
		"amount":           amount,
	}
	if o.paid() {
		t["transaction_id"] = o.transactionID
		t["bank_type"] = "OTHERS"
		t["success_time"] = formatTime(o.successTime)
		t["promotion_detail"] = []any{}
		amount["payer_total"] = o.total
		amount["payer_currency"] = o.currency
	}
	return t
}

// routes builds the handler. Unknown /v3/ paths get a signed 404 like every
// other answer.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v3/pay/transactions/jsapi", s.api(s.handlePrepay))
	mux.Handle("GET /v3/pay/transactions/out-trade-no/{out_trade_no}", s.api(s.handleQueryByOutTradeNo))
	mux.Handle("GET /v3/pay/transactions/id/{transaction_id}", s.api(s.handleQueryByTransactionID))
	mux.Handle("POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close", s.api(s.handleClose))
	mux.Handle("POST /v3/refund/domestic/refunds", s.api(s.handleRefund))
	mux.Handle("GET /v3/refund/domestic/refunds/{out_refund_no}", s.api(s.handleRefundQuery))
	mux.Handle("GET /v3/bill/tradebill", s.api(s.handleTradeBill))
	mux.HandleFunc("GET /v3/billdownload/file", s.handleBillDownload)
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &errReply{status: http.StatusNotFound, code: "RESOURCE_NOT_EXISTS", message: "没有这个接口：" + r.Method + " " + r.URL.Path})
	})
	s.controlRoutes(mux)
	return mux
}

// prepayBody is POST /v3/pay/transactions/jsapi. Pointers tell "absent" from
// zero.
type prepayBody struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	GoodsTag    string `json:"goods_tag"`
	Amount      *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
}

func (s *Server) handlePrepay(req *apiRequest) reply {
	var in prepayBody
	if err := json.Unmarshal(req.body, &in); err != nil {
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "请求体不是合法的 JSON：" + err.Error()})
	}
	timeExpire, e := validatePrepay(&in)
	if e != nil {
		return fail(e)
	}
	if in.AppID != s.cfg.AppID || in.MchID != s.cfg.MchID {
		return failf(http.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "appid %q 和 mchid %q 不匹配", in.AppID, in.MchID)
	}
	currency := in.Amount.Currency
	if currency == "" {
		currency = "CNY"
	}
	// Everything that defines the order; a resend may repeat it but not change it.
	fp, _ := json.Marshal([]any{in.AppID, in.Description, *in.Amount.Total, currency, in.Payer.OpenID,
		in.Attach, in.NotifyURL, in.GoodsTag, in.TimeExpire})

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if o := s.orders[in.OutTradeNo]; o != nil {
		o.refresh(now)
		switch {
		case o.paid():
			// [unconfirmed] exact code for re-ordering a paid out_trade_no.
			return failf(http.StatusBadRequest, "INVALID_REQUEST", "该订单已支付，请使用新的商户订单号")
		case o.state == stateClosed:
			return failf(http.StatusBadRequest, "ORDER_CLOSED", "订单已关闭，请使用新的商户订单号")
		case o.fingerprint != string(fp):
			return failf(http.StatusForbidden, "OUT_TRADE_NO_USED", "商户订单号重复：参数与原订单不一致")
		}
		if now.Sub(o.prepayAt) >= prepayTTL {
			o.prepayID, o.prepayAt = s.newPrepayID(now), now
		}
		return ok(map[string]string{"prepay_id": o.prepayID})
	}
	o := &order{
		appID:       in.AppID,
		description: in.Description,
		outTradeNo:  in.OutTradeNo,
		attach:      in.Attach,
		notifyURL:   in.NotifyURL,
		goodsTag:    in.GoodsTag,
		openID:      in.Payer.OpenID,
		currency:    currency,
		total:       *in.Amount.Total,
		timeExpire:  timeExpire,
		fingerprint: string(fp),
		createdAt:   now,
		prepayID:    s.newPrepayID(now),
		prepayAt:    now,
		state:       stateNotPay,
	}
	s.orders[o.outTradeNo] = o
	s.ordered = append(s.ordered, o)
	s.log.Info("order created", "out_trade_no", o.outTradeNo, "total", o.total)
	return ok(map[string]string{"prepay_id": o.prepayID})
}

// validatePrepay checks the JSAPI fields (S17's PARAM_ERROR part) in the
// order the table lists them and returns the parsed time_expire.
func validatePrepay(in *prepayBody) (time.Time, *errReply) {
	switch {
	case in.AppID == "":
		return time.Time{}, paramError("appid", nil, "必填")
	case in.MchID == "":
		return time.Time{}, paramError("mchid", nil, "必填")
	case in.Description == "":
		return time.Time{}, paramError("description", nil, "必填")
	case utf8.RuneCountInString(in.Description) > 127:
		return time.Time{}, paramError("description", in.Description, "长度不能超过127个字符")
	case !validTradeNo(in.OutTradeNo):
		return time.Time{}, paramError("out_trade_no", in.OutTradeNo, "必须是6-32位数字、大小写字母或_-|*")
	case utf8.RuneCountInString(in.Attach) > 128:
		return time.Time{}, paramError("attach", in.Attach, "长度不能超过128个字符")
	case in.NotifyURL == "":
		return time.Time{}, paramError("notify_url", nil, "必填")
	case !validNotifyURL(in.NotifyURL):
		return time.Time{}, paramError("notify_url", in.NotifyURL, "必须是不带参数的 http(s) 完整地址")
	case in.Amount == nil || in.Amount.Total == nil:
		return time.Time{}, paramError("amount.total", nil, "必填")
	case *in.Amount.Total < 1:
		return time.Time{}, paramError("amount.total", *in.Amount.Total, "必须大于0（单位：分）")
	case in.Amount.Currency != "" && in.Amount.Currency != "CNY":
		return time.Time{}, paramError("amount.currency", in.Amount.Currency, "仅支持CNY")
	case in.Payer == nil || in.Payer.OpenID == "":
		return time.Time{}, paramError("payer.openid", nil, "必填")
	}
	var expire time.Time
	if in.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, in.TimeExpire)
		if err != nil {
			return time.Time{}, paramError("time_expire", in.TimeExpire, "必须是 RFC 3339 格式，如 2018-06-08T10:34:56+08:00")
		}
		expire = t
	}
	return expire, nil
}

// validTradeNo: 6–32 characters of [0-9A-Za-z_-|*].
func validTradeNo(s string) bool {
	if len(s) < 6 || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && !strings.ContainsRune("_-|*", rune(c)) {
			return false
		}
	}
	return true
}

// validRefundNo: 1–64 characters of [0-9A-Za-z_-|*@].
func validRefundNo(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && !strings.ContainsRune("_-|*@", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// validNotifyURL: absolute http(s), no query string ("notify_url不能携带参数").
// Real WeChat Pay also demands https and a public host; the simulator calls
// loopback receivers, so it accepts http and any host.
func validNotifyURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.RawQuery == "" && !strings.Contains(s, "?")
}

// newPrepayID: "wx" + yyyyMMddHHmmss + 20 characters, like
// wx201410272009395522657a690389285100.
func (s *Server) newPrepayID(now time.Time) string {
	return "wx" + now.In(time.FixedZone("CST", 8*60*60)).Format("20060102150405") + s.randString(20, hexLower)
}

// checkMchIDQuery enforces the mchid query parameter of the GET endpoints.
func (s *Server) checkMchIDQuery(r *http.Request) *errReply {
	switch m := r.URL.Query().Get("mchid"); {
	case m == "":
		return &errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "缺少查询参数 mchid",
			detail: &errDetail{Field: "mchid", Issue: "必填", Location: "query"}}
	case m != s.cfg.MchID:
		return &errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "mchid 与请求签名的商户号不一致",
			detail: &errDetail{Field: "mchid", Value: m, Issue: "与 Authorization 中的 mchid 不一致", Location: "query"}}
	}
	return nil
}

func (s *Server) handleQueryByOutTradeNo(req *apiRequest) reply {
	if e := s.checkMchIDQuery(req.r); e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	o := s.orders[req.r.PathValue("out_trade_no")]
	if o == nil {
		return failf(http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
	}
	o.refresh(s.now())
	return ok(s.transactionJSON(o))
}

func (s *Server) handleQueryByTransactionID(req *apiRequest) reply {
	if e := s.checkMchIDQuery(req.r); e != nil {
		return fail(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	o := s.byTxn[req.r.PathValue("transaction_id")]
	if o == nil {
		return failf(http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
	}
	return ok(s.transactionJSON(o))
}

func (s *Server) handleClose(req *apiRequest) reply {
	var in struct {
		MchID string `json:"mchid"`
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "请求体不是合法的 JSON：" + err.Error()})
	}
	if in.MchID == "" {
		return fail(paramError("mchid", nil, "必填"))
	}
	if in.MchID != s.cfg.MchID {
		return fail(paramError("mchid", in.MchID, "与 Authorization 中的 mchid 不一致"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	o := s.orders[req.r.PathValue("out_trade_no")]
	if o == nil {
		return failf(http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
	}
	o.refresh(now)
	switch {
	case o.paid():
		// [unconfirmed] exact code for closing a paid order (ORDERPAID or INVALID_REQUEST).
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "订单已支付，不能关闭")
	case o.state == stateClosed:
		return noContent() // closing twice is harmless
	case now.Sub(o.createdAt) < s.cfg.MinCloseAge:
		return failf(http.StatusBadRequest, "INVALID_REQUEST", "订单创建后 %s 内不能关闭", s.cfg.MinCloseAge)
	}
	o.state, o.closedAt, o.closeReason = stateClosed, now, "closed by merchant"
	s.log.Info("order closed", "out_trade_no", o.outTradeNo)
	return noContent()
}
