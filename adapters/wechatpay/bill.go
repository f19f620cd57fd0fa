package wechatpay

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // WeChat Pay names SHA1 as the bill's checksum; it is not used as a signature
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The trade bill (交易账单) is WeChat Pay's own list of a day's payments and
// refunds: the ground truth reconciliation compares with. Getting it takes
// two requests: GET /v3/bill/tradebill answers (signed) with a download URL
// and the file's SHA1, and a signed GET of that URL returns the file itself,
// which is not signed — the hash from the first answer is what vouches for
// it.

// BillRef is the answer of GET /v3/bill/tradebill.
type BillRef struct {
	HashType    string `json:"hash_type"`  // "SHA1"
	HashValue   string `json:"hash_value"` // hex
	DownloadURL string `json:"download_url"`
}

// Bill types of TradeBill.
const (
	BillAll     = "ALL"
	BillSuccess = "SUCCESS"
	BillRefund  = "REFUND"
)

// ErrNoBill is TradeBill's error for a day with no bill (no payments and no
// refunds: NO_STATEMENT_EXIST) — for reconciliation, an empty day.
var ErrNoBill = errors.New("wechatpay: no bill for that day")

// ErrBillNotReady is TradeBill's error when the day's bill is still being
// made (STATEMENT_CREATING: today's, or yesterday's before 10:00).
var ErrBillNotReady = errors.New("wechatpay: the bill is not made yet")

// maxBillBytes bounds a downloaded bill: a small shop's day is a few KiB; a
// busy merchant's ALL bill is still far below this.
const maxBillBytes = 64 << 20

// TradeBill asks for the trade bill of day ("2006-01-02", Asia/Shanghai)
// of billType (BillAll when empty).
func (c *Client) TradeBill(ctx context.Context, day, billType string) (*BillRef, error) {
	if _, err := time.Parse("2006-01-02", day); err != nil {
		return nil, fmt.Errorf("wechatpay: trade bill: day %q is not YYYY-MM-DD", day)
	}
	if billType == "" {
		billType = BillAll
	}
	var ref BillRef
	err := c.do(ctx, http.MethodGet, "/v3/bill/tradebill", url.Values{"bill_date": {day}, "bill_type": {billType}}, nil, &ref)
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Code == "NO_STATEMENT_EXIST":
		return nil, fmt.Errorf("%w: %s (%s)", ErrNoBill, day, ae.Message)
	case errors.As(err, &ae) && ae.Code == "STATEMENT_CREATING":
		return nil, fmt.Errorf("%w: %s (%s)", ErrBillNotReady, day, ae.Message)
	case err != nil:
		return nil, err
	}
	if ref.DownloadURL == "" || ref.HashValue == "" {
		return nil, errors.New("wechatpay: trade bill: answer has no download_url or hash_value")
	}
	return &ref, nil
}

// DownloadBill fetches the file ref names and checks its hash. The URL must
// be on the client's API host (under its BaseURL): the request is signed
// as the merchant, and that goes to WeChat Pay only.
func (c *Client) DownloadBill(ctx context.Context, ref BillRef) ([]byte, error) {
	if !strings.EqualFold(ref.HashType, "SHA1") {
		return nil, fmt.Errorf("wechatpay: bill download: hash type %q is not SHA1", ref.HashType)
	}
	want, err := hex.DecodeString(ref.HashValue)
	if err != nil || len(want) != sha1.Size {
		return nil, fmt.Errorf("wechatpay: bill download: hash_value %q is not a SHA1 in hex", ref.HashValue)
	}
	if !strings.HasPrefix(ref.DownloadURL, c.baseURL+"/") {
		return nil, fmt.Errorf("wechatpay: bill download: URL %q is not on %s", ref.DownloadURL, c.baseURL)
	}
	u, err := url.Parse(ref.DownloadURL)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: bill download: %w", err)
	}
	// Sign what the server sees: the URL without our BaseURL's prefix.
	canonical := strings.TrimPrefix(ref.DownloadURL, c.baseURL)
	if u.Fragment != "" {
		return nil, fmt.Errorf("wechatpay: bill download: URL %q has a fragment", ref.DownloadURL)
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	nonce := newNonce()
	sig, err := signSHA256WithRSA(c.key, requestMessage(http.MethodGet, canonical, ts, nonce, nil))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.DownloadURL, nil)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: bill download: %w", err)
	}
	req.Header.Set("Authorization", authorization(c.mchID, nonce, ts, c.serialNo, sig))
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: bill download: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBillBytes+1))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: bill download: read (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(data) > maxBillBytes {
		return nil, fmt.Errorf("wechatpay: bill download: file exceeds %d bytes", maxBillBytes)
	}
	if resp.StatusCode != http.StatusOK {
		// Error answers are signed JSON like any API answer.
		if verr := c.verify(resp.Header, data); verr != nil {
			return nil, fmt.Errorf("wechatpay: bill download: HTTP %d answer: %w", resp.StatusCode, verr)
		}
		return nil, parseAPIError(resp.StatusCode, headerValue(resp.Header, headerRequestID), data)
	}
	got := sha1.Sum(data) //nolint:gosec // see the import
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return nil, fmt.Errorf("wechatpay: bill download: SHA1 %x does not match hash_value %s: the file was altered or cut short", got, ref.HashValue)
	}
	return data, nil
}

// FetchTradeBill gets, checks and parses day's ALL bill. A day with no bill
// is an empty TradeBill; one not made yet is ErrBillNotReady.
func (c *Client) FetchTradeBill(ctx context.Context, day string) (*TradeBill, error) {
	ref, err := c.TradeBill(ctx, day, BillAll)
	if errors.Is(err, ErrNoBill) {
		return &TradeBill{}, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := c.DownloadBill(ctx, *ref)
	if err != nil {
		return nil, err
	}
	return ParseTradeBill(data)
}

// TradeBill is a parsed trade bill.
type TradeBill struct {
	Rows    []BillRow
	Summary BillSummary
}

// BillRow is one line of a trade bill: a payment (TradeState SUCCESS) or a
// refund (TradeState REFUND, with the Refund fields). Money is in fen.
type BillRow struct {
	Time          time.Time // 交易时间, Asia/Shanghai
	AppID         string
	MchID         string
	TransactionID string // 微信订单号
	OutTradeNo    string // 商户订单号
	OpenID        string
	TradeType     string
	TradeState    string // SUCCESS, REFUND, REVOKED, …
	Settled       int64  // 应结订单金额
	RefundID      string // 微信退款单号 ("0" on payments)
	OutRefundNo   string // 商户退款单号 ("0" on payments)
	Refund        int64  // 退款金额
	RefundStatus  string // 退款状态: SUCCESS, PROCESSING, ABNORMAL, CLOSED
	Description   string // 商品名称
	Attach        string // 商户数据包
	Fee           string // 手续费, yuan with five decimals as written
	Total         int64  // 订单金额
	RefundAsked   int64  // 申请退款金额
}

// IsRefund reports whether the row is a refund.
func (r BillRow) IsRefund() bool { return r.TradeState == "REFUND" }

// BillSummary is the bill's closing summary.
type BillSummary struct {
	Count       int   // 总交易单数
	Settled     int64 // 应结订单总金额
	Refunded    int64 // 退款总金额
	Fees        string
	Total       int64 // 订单总金额
	RefundAsked int64 // 申请退款总金额
}

// The columns ParseTradeBill needs, by their header names. Columns are
// found by name, so extra or reordered columns (WeChat Pay has added some
// over the years) do not break parsing.
const (
	colTime, colAppID, colMchID, colTxn, colOutTradeNo = "交易时间", "公众账号ID", "商户号", "微信订单号", "商户订单号"
	colOpenID, colTradeType, colState, colSettled      = "用户标识", "交易类型", "交易状态", "应结订单金额"
	colRefundID, colOutRefundNo, colRefund             = "微信退款单号", "商户退款单号", "退款金额"
	colRefundStatus, colDesc, colAttach, colFee        = "退款状态", "商品名称", "商户数据包", "手续费"
	colTotal, colRefundAsked                           = "订单金额", "申请退款金额"
)

var requiredBillColumns = []string{colTime, colTxn, colOutTradeNo, colState, colSettled, colOutRefundNo, colRefund}

// ParseTradeBill reads a trade bill: a header line, data lines whose
// fields each start with a backquote (so that spreadsheets keep long
// numbers as text), then "总交易单数,…" and the summary line. Line endings
// may be \r\n or \n; a UTF-8 byte-order mark is skipped. The summary must
// agree with the lines: a bill cut short or altered is an error, never a
// shorter list.
func ParseTradeBill(data []byte) (*TradeBill, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, errors.New("wechatpay: bill: not UTF-8")
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) < 3 {
		return nil, fmt.Errorf("wechatpay: bill: %d lines; a bill has at least its header and the summary", len(lines))
	}
	header := strings.Split(lines[0], ",")
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := col[h]; dup && h != "" {
			return nil, fmt.Errorf("wechatpay: bill: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range requiredBillColumns {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("wechatpay: bill: header has no %q column", need)
		}
	}
	bill := &TradeBill{}
	i := 1
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "总交易单数"); i++ {
		fields, err := billFields(lines[i], len(header))
		if err != nil {
			return nil, fmt.Errorf("wechatpay: bill line %d: %w", i+1, err)
		}
		row, err := billRow(fields, col)
		if err != nil {
			return nil, fmt.Errorf("wechatpay: bill line %d: %w", i+1, err)
		}
		bill.Rows = append(bill.Rows, row)
	}
	if i+2 != len(lines) {
		if i == len(lines) {
			return nil, errors.New("wechatpay: bill: no summary (总交易单数…): the file is cut short")
		}
		return nil, fmt.Errorf("wechatpay: bill: %d lines after the summary header, want 1", len(lines)-i-1)
	}
	sumHeader := strings.Split(lines[i], ",")
	sumFields, err := billFields(lines[i+1], len(sumHeader))
	if err != nil {
		return nil, fmt.Errorf("wechatpay: bill summary: %w", err)
	}
	s := &bill.Summary
	for k, name := range sumHeader {
		v := sumFields[k]
		var err error
		switch strings.TrimSpace(name) {
		case "总交易单数":
			s.Count, err = strconv.Atoi(v)
			if err == nil && s.Count < 0 {
				err = errors.New("negative")
			}
		case "应结订单总金额":
			s.Settled, err = parseYuan(v)
		case "退款总金额":
			s.Refunded, err = parseYuan(v)
		case "手续费总金额":
			s.Fees = v
		case "订单总金额":
			s.Total, err = parseYuan(v)
		case "申请退款总金额":
			s.RefundAsked, err = parseYuan(v)
		}
		if err != nil {
			return nil, fmt.Errorf("wechatpay: bill summary: %s %q: %v", name, v, err)
		}
	}
	var settled, refunded int64
	for _, r := range bill.Rows {
		settled += r.Settled
		refunded += r.Refund
	}
	if s.Count != len(bill.Rows) || s.Settled != settled || s.Refunded != refunded {
		return nil, fmt.Errorf("wechatpay: bill: summary says %d lines, %d fen settled, %d fen refunded; the lines add up to %d, %d, %d",
			s.Count, s.Settled, s.Refunded, len(bill.Rows), settled, refunded)
	}
	return bill, nil
}

// billFields splits a data line: "`a,`b,`c". A field never holds ",`"
// (WeChat Pay writes no quoting), which makes that the separator even when
// a description holds a plain comma.
func billFields(line string, n int) ([]string, error) {
	if !strings.HasPrefix(line, "`") {
		return nil, errors.New("a data field does not start with a backquote")
	}
	fields := strings.Split(line[1:], ",`")
	if len(fields) != n {
		return nil, fmt.Errorf("%d fields, the header has %d", len(fields), n)
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields, nil
}

var shanghai = time.FixedZone("CST", 8*60*60)

func billRow(f []string, col map[string]int) (BillRow, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return f[i]
		}
		return ""
	}
	var r BillRow
	var err error
	if r.Time, err = time.ParseInLocation("2006-01-02 15:04:05", get(colTime), shanghai); err != nil {
		return r, fmt.Errorf("交易时间 %q is not yyyy-MM-dd HH:mm:ss", get(colTime))
	}
	r.AppID, r.MchID, r.TransactionID, r.OutTradeNo = get(colAppID), get(colMchID), get(colTxn), get(colOutTradeNo)
	r.OpenID, r.TradeType, r.TradeState = get(colOpenID), get(colTradeType), get(colState)
	r.RefundID, r.OutRefundNo, r.RefundStatus = get(colRefundID), get(colOutRefundNo), get(colRefundStatus)
	r.Description, r.Attach, r.Fee = get(colDesc), get(colAttach), get(colFee)
	if r.OutTradeNo == "" || r.TradeState == "" {
		return r, errors.New("no 商户订单号 or 交易状态")
	}
	for _, m := range []struct {
		name string
		into *int64
		need bool
	}{{colSettled, &r.Settled, true}, {colRefund, &r.Refund, true}, {colTotal, &r.Total, false}, {colRefundAsked, &r.RefundAsked, false}} {
		v := get(m.name)
		if v == "" && !m.need {
			continue
		}
		if *m.into, err = parseYuan(v); err != nil {
			return r, fmt.Errorf("%s %q: %v", m.name, v, err)
		}
	}
	if r.IsRefund() && (r.OutRefundNo == "" || r.OutRefundNo == "0") {
		return r, errors.New("a refund line without 商户退款单号")
	}
	return r, nil
}

// parseYuan reads "12.50", "12.5", "12" or "-0.01" as fen, exactly: money
// never goes through a float.
func parseYuan(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 15 || strings.Trim(whole, "0123456789") != "" ||
		(hasFrac && (len(frac) == 0 || len(frac) > 2 || strings.Trim(frac, "0123456789") != "")) {
		return 0, errors.New("not an amount in yuan with at most two decimals")
	}
	n, _ := strconv.ParseInt(whole, 10, 64) // ≤ 15 digits: no overflow
	fen := n * 100
	if hasFrac {
		f, _ := strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			f *= 10
		}
		fen += f
	}
	if neg {
		fen = -fen
	}
	return fen, nil
}
