package wechatpay

import (
	"strings"
	"testing"
)

// sampleBill is an ALL trade bill as WeChat Pay writes it (columns of the
// v3 bill; a payment, a refund of part of it, the summary).
const sampleBill = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n" +
	"`2026-11-25 09:12:01,`wx2421b1c4370ec43b,`1900000109,`0,`,`4200001234202611250000000001,`TG20261125A1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`230.00,`0.00,`0,`0,`0.00,`0.00,`,`,`渔具租赁 台钓竿, 3天,`TG20261125A,`1.38000,`0.60%,`230.00,`0.00,`\r\n" +
	"`2026-11-25 18:40:00,`wx2421b1c4370ec43b,`1900000109,`0,`,`4200001234202611250000000001,`TG20261125A1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000000000000000000000001,`TG20261125A-R1,`180.00,`0.00,`ORIGINAL,`SUCCESS,`渔具租赁 台钓竿, 3天,`TG20261125A,`-1.08000,`0.60%,`230.00,`180.00,`\r\n" +
	"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n" +
	"`2,`230.00,`180.00,`0.00,`0.30000,`460.00,`180.00\r\n"

func TestParseTradeBill(t *testing.T) {
	b, err := ParseTradeBill([]byte(sampleBill))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rows) != 2 {
		t.Fatalf("%d rows", len(b.Rows))
	}
	p, r := b.Rows[0], b.Rows[1]
	if p.IsRefund() || p.OutTradeNo != "TG20261125A1" || p.Settled != 23000 || p.Description != "渔具租赁 台钓竿, 3天" || p.Time.Hour() != 9 {
		t.Errorf("payment %+v", p)
	}
	if !r.IsRefund() || r.OutRefundNo != "TG20261125A-R1" || r.Refund != 18000 || r.RefundStatus != "SUCCESS" || r.RefundAsked != 18000 {
		t.Errorf("refund %+v", r)
	}
	if b.Summary.Count != 2 || b.Summary.Total != 46000 || b.Summary.Fees != "0.30000" {
		t.Errorf("summary %+v", b.Summary)
	}
	// \n line endings and a byte-order mark are fine too.
	if _, err := ParseTradeBill([]byte("\xef\xbb\xbf" + strings.ReplaceAll(sampleBill, "\r\n", "\n"))); err != nil {
		t.Errorf("LF bill with BOM: %v", err)
	}

	for name, bill := range map[string]string{
		"cut short":             sampleBill[:strings.Index(sampleBill, "总交易单数")],
		"line dropped":          strings.Replace(sampleBill, sampleBill[strings.Index(sampleBill, "`2026-11-25 18:40"):strings.Index(sampleBill, "总交易单数")], "", 1),
		"amount edited":         strings.Replace(sampleBill, "`230.00,`0.00,`0,", "`130.00,`0.00,`0,", 1),
		"float-looking amount":  strings.Replace(sampleBill, "`180.00,`0.00,`ORIGINAL", "`1.8e2,`0.00,`ORIGINAL", 1),
		"three decimals":        strings.Replace(sampleBill, "`180.00,`0.00,`ORIGINAL", "`180.001,`0.00,`ORIGINAL", 1),
		"no backquotes":         strings.ReplaceAll(sampleBill, "`", ""),
		"missing column":        strings.Replace(sampleBill, "商户订单号,", "订单号,", 1),
		"bad time":              strings.Replace(sampleBill, "2026-11-25 09:12:01", "2026/11/25 09:12", 1),
		"refund without number": strings.Replace(sampleBill, "`TG20261125A-R1,", "`0,", 1),
		"empty":                 "",
	} {
		if _, err := ParseTradeBill([]byte(bill)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestParseYuan(t *testing.T) {
	for in, want := range map[string]int64{"0.00": 0, "0.01": 1, "12.5": 1250, "12": 1200, "-1.08": -108, "230.00": 23000} {
		if got, err := parseYuan(in); err != nil || got != want {
			t.Errorf("parseYuan(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", "1.", ".5", "1.234", "1e3", "１.00", "NaN", "1,000.00", "9999999999999999.00", " 1.00"} {
		if _, err := parseYuan(in); err == nil {
			t.Errorf("parseYuan(%q) accepted", in)
		}
	}
}

// FuzzParseTradeBill: whatever WeChat Pay (or a man in the middle who also
// got the hash right) sends, the parser does not panic, and what it accepts
// is consistent: the summary agrees with the lines it returns.
func FuzzParseTradeBill(f *testing.F) {
	f.Add([]byte(sampleBill))
	f.Add([]byte(strings.ReplaceAll(sampleBill, "\r\n", "\n")))
	f.Add([]byte("交易时间,商户订单号,微信订单号,交易状态,应结订单金额,商户退款单号,退款金额\n总交易单数,应结订单总金额,退款总金额\n`0,`0.00,`0.00\n"))
	f.Add([]byte("交易时间,商户订单号\n`x\n总交易单数\n`1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseTradeBill(data)
		if err != nil {
			if b != nil {
				t.Fatal("a bill and an error")
			}
			return
		}
		var settled, refunded int64
		for _, r := range b.Rows {
			if r.OutTradeNo == "" || r.TradeState == "" || r.Time.IsZero() {
				t.Fatalf("row without identity: %+v", r)
			}
			if r.IsRefund() && (r.OutRefundNo == "" || r.OutRefundNo == "0") {
				t.Fatalf("refund row without number: %+v", r)
			}
			settled += r.Settled
			refunded += r.Refund
		}
		if b.Summary.Count != len(b.Rows) || b.Summary.Settled != settled || b.Summary.Refunded != refunded {
			t.Fatalf("accepted a bill whose summary disagrees: %+v vs %d rows", b.Summary, len(b.Rows))
		}
	})
}
