package paysim

import (
	"crypto/sha1" //nolint:gosec // WeChat Pay's bill hash is SHA1; it is a checksum here, not a signature
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The trade bill (交易账单): GET /v3/bill/tradebill?bill_date=&bill_type=
// answers, signed like every API answer, with {hash_type, hash_value,
// download_url}; the download URL (GET, signed request; the file itself is
// not signed — its SHA1 is what the merchant checks) returns the day's
// bill as WeChat Pay writes it: a header line, one line per payment and per
// refund with every field prefixed by a backquote, then the summary header
// and its line.
//
// What a bill holds, as the simulator decides it (WeChat Pay documents the
// format, not every rule):
//   - a SUCCESS line for each order paid that day (Asia/Shanghai), even if
//     it was refunded later;
//   - a REFUND line for each refund asked for that day, with the refund's
//     current status;
//   - a day with neither has no bill: 400 NO_STATEMENT_EXIST. Today's bill
//     is not made yet (400 STATEMENT_CREATING); later days, or days more
//     than three months back, are a PARAM_ERROR.
//
// A download URL stays valid for 5 minutes (wire clock) and may be used
// more than once.

// BillColumns is the header of an ALL trade bill.
var BillColumns = []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型", "交易状态",
	"付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
	"商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"}

// BillSummaryColumns is the header of the summary at the end of a bill.
var BillSummaryColumns = []string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}

const (
	billURLTTL = 5 * time.Minute
	// feeRate is the simulated merchant's rate: 0.6%, the usual rate for
	// mini-program payments.
	feeRatePermille = 6
)

// billFile is a bill handed out under a download token.
type billFile struct {
	data    []byte
	expires time.Time // wire clock
}

var cst = time.FixedZone("CST", 8*60*60)

func (s *Server) handleTradeBill(req *apiRequest) reply {
	q := req.r.URL.Query()
	dateText := q.Get("bill_date")
	day, err := time.ParseInLocation("2006-01-02", dateText, cst)
	if err != nil {
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "参数错误：bill_date 应为 yyyy-MM-DD",
			detail: &errDetail{Field: "bill_date", Value: dateText, Issue: "format", Location: "query"}})
	}
	billType := q.Get("bill_type")
	if billType == "" {
		billType = "ALL"
	}
	if billType != "ALL" && billType != "SUCCESS" && billType != "REFUND" {
		return fail(&errReply{status: http.StatusBadRequest, code: "PARAM_ERROR", message: "参数错误：bill_type 应为 ALL、SUCCESS 或 REFUND",
			detail: &errDetail{Field: "bill_type", Value: billType, Issue: "enum", Location: "query"}})
	}
	if tt := q.Get("tar_type"); tt != "" {
		return failf(http.StatusBadRequest, "PARAM_ERROR", "参数错误：模拟器只提供未压缩的账单（tar_type 不填）")
	}
	now := s.now().In(cst)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, cst)
	switch {
	case day.After(today):
		return failf(http.StatusBadRequest, "PARAM_ERROR", "参数错误：bill_date 不能晚于今天")
	case day.Equal(today):
		return failf(http.StatusBadRequest, "STATEMENT_CREATING", "账单生成中，请在次日 10 点后再次请求")
	case day.Before(today.AddDate(0, -3, 0)):
		return failf(http.StatusBadRequest, "PARAM_ERROR", "参数错误：仅支持下载三个月内的账单")
	}
	data, n := s.tradeBill(day, billType)
	if n == 0 {
		return failf(http.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在，请检查当前商户号在指定日期内是否有成功的交易")
	}
	token := s.randString(64, alnum)
	s.mu.Lock()
	if s.bills == nil {
		s.bills = map[string]billFile{}
	}
	wire := s.wireNow()
	for t, f := range s.bills {
		if wire.After(f.expires) {
			delete(s.bills, t)
		}
	}
	s.bills[token] = billFile{data: data, expires: wire.Add(billURLTTL)}
	s.mu.Unlock()
	sum := sha1.Sum(data) //nolint:gosec // see the import
	return ok(map[string]string{
		"hash_type":    "SHA1",
		"hash_value":   hex.EncodeToString(sum[:]),
		"download_url": baseURL(req.r) + "/v3/billdownload/file?token=" + token,
	})
}

// baseURL is how the merchant reached this server: scheme, host and the
// prefix a parent mux stripped ("/pay" in wxsim), so that the download URL
// works from where the merchant stands, like WeChat Pay's absolute URL.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	full := r.RequestURI
	if i := strings.IndexByte(full, '?'); i >= 0 {
		full = full[:i]
	}
	prefix := strings.TrimSuffix(full, r.URL.EscapedPath())
	if strings.HasPrefix(full, "http://") || strings.HasPrefix(full, "https://") { // a proxy-style absolute request line
		prefix = ""
	}
	return scheme + "://" + r.Host + prefix
}

// handleBillDownload serves a bill file: the request is authenticated like
// any API request, the file is sent as it is (no signature headers).
func (s *Server) handleBillDownload(w http.ResponseWriter, r *http.Request) {
	if err := s.authenticate(r, nil); err != nil {
		s.writeError(w, &errReply{status: http.StatusUnauthorized, code: "SIGN_ERROR", message: "签名错误：" + err.Error()})
		return
	}
	s.mu.Lock()
	f, found := s.bills[r.URL.Query().Get("token")]
	s.mu.Unlock()
	if !found || s.wireNow().After(f.expires) {
		s.writeError(w, &errReply{status: http.StatusBadRequest, code: "INVALID_REQUEST", message: "下载链接无效或已过期，请重新申请账单"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.data)
}

// billLine is one payment or refund line before formatting.
type billLine struct {
	at                                   time.Time
	o                                    *order
	refund                               *refund // nil on a payment line
	settled, refundAmt, total, requested int64
	feeMilli                             int64 // in 0.001 fen, negative on refunds
}

// tradeBill writes the bill of day (00:00 CST) and returns it with its
// number of lines.
func (s *Server) tradeBill(day time.Time, billType string) ([]byte, int) {
	end := day.AddDate(0, 0, 1)
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(day) && t.Before(end) }
	s.mu.Lock()
	s.advanceLocked()
	var lines []billLine
	for _, o := range s.ordered {
		if billType != "REFUND" && o.paid() && in(o.successTime) {
			lines = append(lines, billLine{at: o.successTime, o: o, settled: o.total, total: o.total, feeMilli: o.total * feeRatePermille})
		}
		if billType == "SUCCESS" {
			continue
		}
		for _, rf := range o.refunds {
			if in(rf.createdAt) {
				lines = append(lines, billLine{at: rf.createdAt, o: o, refund: rf, total: o.total, refundAmt: rf.amount, requested: rf.amount,
					feeMilli: -rf.amount * feeRatePermille})
			}
		}
	}
	mch, appID := s.cfg.MchID, s.cfg.AppID
	s.mu.Unlock()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })

	var b strings.Builder
	b.WriteString(strings.Join(BillColumns, ",") + "\r\n")
	var settled, refunded, fees, total, requested int64
	for _, l := range lines {
		o := l.o
		state, refundID, outRefundNo, refundType, refundStatus := "SUCCESS", "0", "0", "", ""
		if l.refund != nil {
			state, refundID, outRefundNo, refundType, refundStatus = "REFUND", l.refund.refundID, l.refund.outRefundNo, "ORIGINAL", l.refund.status
		}
		app := o.appID
		if app == "" {
			app = appID
		}
		fields := []string{l.at.In(cst).Format("2006-01-02 15:04:05"), app, mch, "0", "", o.transactionID, o.outTradeNo, o.openID, "JSAPI", state,
			"OTHERS", "CNY", yuan(l.settled), "0.00", refundID, outRefundNo, yuan(l.refundAmt), "0.00", refundType, refundStatus,
			billText(o.description), billText(o.attach), feeText(l.feeMilli), "0.60%", yuan(l.total), yuan(l.requested), ""}
		b.WriteString("`" + strings.Join(fields, ",`") + "\r\n")
		settled += l.settled
		refunded += l.refundAmt
		fees += l.feeMilli
		total += l.total
		requested += l.requested
	}
	b.WriteString(strings.Join(BillSummaryColumns, ",") + "\r\n")
	b.WriteString("`" + strings.Join([]string{fmt.Sprint(len(lines)), yuan(settled), yuan(refunded), "0.00", feeText(fees), yuan(total), yuan(requested)}, ",`") + "\r\n")
	return []byte(b.String()), len(lines)
}

// yuan writes fen as WeChat Pay's bills do: "12.50".
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// feeText writes a fee given in 0.001 fen (= 0.00001 yuan) as yuan with
// five decimals, as the bills do: 138000 → "1.38000".
func feeText(milli int64) string {
	sign := ""
	if milli < 0 {
		sign, milli = "-", -milli
	}
	return fmt.Sprintf("%s%d.%05d", sign, milli/100000, milli%100000)
}

// billText keeps a free-text field from breaking the line: WeChat Pay's
// bills do not quote fields, so line breaks become spaces and a comma
// followed by a backquote cannot appear.
func billText(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ", ",`", ", `").Replace(s)
	return s
}
