package paysim_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the bill's checksum is SHA1
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// signedGet fetches an absolute URL with a request signed by hand (not by
// the client under test) and returns the status and raw body.
func (e *env) signedGet(url string) (int, []byte) {
	e.t.Helper()
	target := strings.TrimPrefix(url, e.srv.URL+"/pay")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := rand.Text()
	sum := sha256.Sum256([]byte("GET\n" + target + "\n" + ts + "\n" + nonce + "\n\n"))
	sig, err := rsa.SignPKCS1v15(nil, e.merchant, crypto.SHA256, sum[:])
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", fmt.Sprintf(`WECHATPAY2-SHA256-RSA2048 signature="%s",timestamp="%s",serial_no="%s",nonce_str="%s",mchid="%s"`,
		base64.StdEncoding.EncodeToString(sig), ts, testSerial, nonce, testMchID))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTradeBill checks the bill on the wire, independently of the
// client's parser: the signed answer, the download guarded by the
// merchant's signature, the file's SHA1, its exact lines and summary, the
// bill types, and the days that have no bill.
func TestTradeBill(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.RetryScale = 0.001 })
	day := e.clock.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	e.pay("BILL-1", e.prepay("BILL-1", 25800))
	if _, err := e.client.Refund(context.Background(), wechatpay.RefundRequest{OutTradeNo: "BILL-1", OutRefundNo: "BILL-1-R", Refund: 20000, Total: 25800}); err != nil {
		t.Fatal(err)
	}
	if st, out := e.raw("GET", "/v3/bill/tradebill?bill_date="+day, ""); st != 400 || out["code"] != "STATEMENT_CREATING" {
		t.Errorf("today's bill: %d %v", st, out)
	}
	e.clock.Advance(24 * time.Hour)
	time.Sleep(50 * time.Millisecond) // the refund completes

	st, out := e.raw("GET", "/v3/bill/tradebill?bill_date="+day+"&bill_type=ALL", "")
	url, _ := out["download_url"].(string)
	if st != 200 || out["hash_type"] != "SHA1" || !strings.HasPrefix(url, e.srv.URL+"/pay/v3/billdownload/file?token=") {
		t.Fatalf("tradebill: %d %v", st, out)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("unsigned download: %d", resp.StatusCode)
	}
	st, file := e.signedGet(url)
	sum := sha1.Sum(file) //nolint:gosec // see the import
	if st != 200 || hex.EncodeToString(sum[:]) != out["hash_value"] {
		t.Fatalf("download: %d, sha1 %x vs %v", st, sum, out["hash_value"])
	}
	lines := strings.Split(strings.TrimSuffix(string(file), "\r\n"), "\r\n")
	if len(lines) != 5 || lines[0] != strings.Join(paysim.BillColumns, ",") || lines[3] != strings.Join(paysim.BillSummaryColumns, ",") {
		t.Fatalf("bill lines:\n%s", file)
	}
	pay, refund := strings.Split(lines[1][1:], ",`"), strings.Split(lines[2][1:], ",`")
	if len(pay) != 27 || pay[6] != "BILL-1" || pay[9] != "SUCCESS" || pay[12] != "258.00" || pay[22] != "1.54800" || pay[24] != "258.00" || pay[15] != "0" {
		t.Errorf("payment line %q", pay)
	}
	if len(refund) != 27 || refund[9] != "REFUND" || refund[15] != "BILL-1-R" || refund[16] != "200.00" || refund[19] != "SUCCESS" || refund[22] != "-1.20000" {
		t.Errorf("refund line %q", refund)
	}
	if lines[4] != "`2,`258.00,`200.00,`0.00,`0.34800,`516.00,`200.00" {
		t.Errorf("summary %q", lines[4])
	}
	for typ, want := range map[string]string{"SUCCESS": "SUCCESS", "REFUND": "REFUND"} {
		_, out := e.raw("GET", "/v3/bill/tradebill?bill_date="+day+"&bill_type="+typ, "")
		_, f := e.signedGet(out["download_url"].(string))
		ls := strings.Split(strings.TrimSuffix(string(f), "\r\n"), "\r\n")
		if len(ls) != 4 || strings.Split(ls[1], ",`")[9] != want {
			t.Errorf("bill_type %s:\n%s", typ, f)
		}
	}
	next := e.clock.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, 1).Format("2006-01-02")
	quiet := e.clock.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, -5).Format("2006-01-02")
	for q, code := range map[string]string{
		"bill_date=" + next:                   "PARAM_ERROR",
		"bill_date=" + quiet:                  "NO_STATEMENT_EXIST",
		"bill_date=20261125":                  "PARAM_ERROR",
		"bill_date=" + day + "&bill_type=X":   "PARAM_ERROR",
		"bill_date=" + day + "&tar_type=GZIP": "PARAM_ERROR",
		"bill_date=2020-01-01":                "PARAM_ERROR",
	} {
		if st, out := e.raw("GET", "/v3/bill/tradebill?"+q, ""); st != 400 || out["code"] != code {
			t.Errorf("%s: %d %v, want %s", q, st, out, code)
		}
	}
	if st, _ := e.signedGet(e.srv.URL + "/pay/v3/billdownload/file?token=unknown"); st != 400 {
		t.Errorf("unknown token: %d", st)
	}
}
