package wechatpay_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// These tests run the client against the simulator over loopback HTTP: two
// independently written implementations of the protocol meeting on the
// wire. The simulator is mounted under /pay, as the parent simulator does,
// so the client's BaseURL carries a prefix that must not be signed.

const (
	mchID    = "1900007291"
	appID    = "wx2421b1c4370ec43b"
	serialNo = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"
	apiV3Key = "0123456789abcdefghijklmnopqrstuv"
	openID   = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
)

type world struct {
	t      *testing.T
	sim    *paysim.Server
	api    *httptest.Server // the simulator, under /pay
	notify *httptest.Server // our notify_url
	client *wechatpay.Client

	mu   sync.Mutex
	got  []*wechatpay.Notification
	errs []error
}

func newWorld(t *testing.T, edit func(*paysim.Config)) *world {
	t.Helper()
	merchant := loadKey(t, officialKey)
	platform := loadKey(t, wxgoKey)
	cfg := paysim.Config{
		MchID: mchID, AppID: appID, MerchantPublicKey: &merchant.PublicKey, MerchantSerial: serialNo, APIv3Key: apiV3Key,
		PlatformKey: platform, PollInterval: 5 * time.Millisecond, Seed: 7,
		// Retries and the refund delay run on the simulator clock scaled by
		// RetryScale: the 50 s refund delay takes 50 ms here.
		RetryScale: 0.001, RefundDelay: 50 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	sim, err := paysim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, sim: sim}
	mux := http.NewServeMux()
	mux.Handle("/pay/", http.StripPrefix("/pay", sim.Handler()))
	w.api = httptest.NewServer(mux)
	w.client = w.newClient(nil)
	w.notify = httptest.NewServer(http.HandlerFunc(w.receive))
	t.Cleanup(func() {
		sim.Close()
		w.api.Close()
		w.notify.Close()
	})
	return w
}

func (w *world) newClient(edit func(*wechatpay.Config)) *wechatpay.Client {
	w.t.Helper()
	cfg := wechatpay.Config{
		MchID: mchID, SerialNo: serialNo, PrivateKey: loadKey(w.t, officialKey), APIv3Key: apiV3Key,
		PlatformPublicKey: w.sim.PlatformPublicKey(), PlatformSerial: w.sim.PlatformSerial(),
		BaseURL: w.api.URL + "/pay", HTTPClient: w.api.Client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := wechatpay.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// receive is the notify_url handler as the gateway will write it: verify and
// decrypt, answer 401/400 on failure, 204 when verified.
func (w *world) receive(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n, err := w.client.ParseNotification(r.Header, body)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, wechatpay.ErrSignature):
		w.errs = append(w.errs, err)
		rw.WriteHeader(http.StatusUnauthorized)
	case err != nil:
		w.errs = append(w.errs, err)
		rw.WriteHeader(http.StatusBadRequest)
	default:
		w.got = append(w.got, n)
		rw.WriteHeader(http.StatusNoContent)
	}
}

func (w *world) notifications() []*wechatpay.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*wechatpay.Notification(nil), w.got...)
}

func (w *world) waitNotifications(n int) []*wechatpay.Notification {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(w.notifications()) < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("got %d notifications, want %d (rejected: %v)", len(w.notifications()), n, w.errs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return w.notifications()
}

// payViaControl is the customer tapping "pay": the page posts the
// wx.requestPayment parameters to the simulator's control API.
func (w *world) payViaControl(outTradeNo string, p wechatpay.PaymentParams) (int, string) {
	w.t.Helper()
	b, _ := json.Marshal(struct {
		OutTradeNo string `json:"out_trade_no"`
		wechatpay.PaymentParams
	}{outTradeNo, p})
	resp, err := http.Post(w.api.URL+"/pay/control/pay", "application/json", bytes.NewReader(b))
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (w *world) order(no string, total int64) wechatpay.PrepayRequest {
	return wechatpay.PrepayRequest{
		AppID: appID, Description: "路亚竿 ×1 租金+押金", OutTradeNo: no, NotifyURL: w.notify.URL + "/callbacks/wechatpay",
		Total: total, PayerOpenID: openID, Attach: "rental:42",
	}
}

func asAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *wechatpay.APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Fatalf("err = %v, want APIError %d %s", err, status, code)
	}
}

// TestEndToEnd is the rental's payment life: prepay, the customer pays, the
// notification arrives and verifies, the query agrees; the deposit is
// partly refunded, the refund notification arrives, the refund query agrees.
func TestEndToEnd(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()

	prepayID, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608001", 25800))
	if err != nil {
		t.Fatal(err)
	}
	params, err := w.client.RequestPayment(appID, prepayID)
	if err != nil {
		t.Fatal(err)
	}
	if params.Package != "prepay_id="+prepayID || params.SignType != "RSA" || len(params.NonceStr) != 32 {
		t.Fatalf("params = %+v", params)
	}
	if status, body := w.payViaControl("RENT20260608001", params); status != http.StatusOK {
		t.Fatalf("pay: %d %s", status, body)
	}

	n := w.waitNotifications(1)[0]
	if n.EventType != wechatpay.EventTransactionSuccess || n.Transaction == nil ||
		n.Transaction.OutTradeNo != "RENT20260608001" || n.Transaction.Amount.Total != 25800 || n.Transaction.Attach != "rental:42" {
		t.Fatalf("notification = %+v / %+v", n, n.Transaction)
	}
	tx, err := w.client.QueryByOutTradeNo(ctx, "RENT20260608001")
	if err != nil || tx.TradeState != wechatpay.TradeStateSuccess || tx.TransactionID != n.Transaction.TransactionID {
		t.Fatalf("query: %+v, %v", tx, err)
	}

	// Return: deposit 20000 of 25800 back.
	rf, err := w.client.Refund(ctx, wechatpay.RefundRequest{
		TransactionID: tx.TransactionID, OutRefundNo: "RENT20260608001-R1", Reason: "归还押金", Refund: 20000, Total: 25800,
		NotifyURL: w.notify.URL + "/callbacks/wechatpay",
	})
	if err != nil || rf.Status != wechatpay.RefundStatusProcessing {
		t.Fatalf("refund: %+v, %v", rf, err)
	}
	rn := w.waitNotifications(2)[1]
	if rn.EventType != wechatpay.EventRefundSuccess || rn.Refund == nil || rn.Refund.OutRefundNo != "RENT20260608001-R1" ||
		rn.Refund.Amount.Refund != 20000 || rn.Refund.RefundStatus != wechatpay.RefundStatusSuccess {
		t.Fatalf("refund notification = %+v / %+v", rn, rn.Refund)
	}
	q, err := w.client.QueryRefund(ctx, "RENT20260608001-R1")
	if err != nil || q.Status != wechatpay.RefundStatusSuccess || q.RefundID != rf.RefundID || q.SuccessTime.IsZero() {
		t.Fatalf("refund query: %+v, %v", q, err)
	}
	if tx, _ := w.client.QueryByOutTradeNo(ctx, "RENT20260608001"); tx.TradeState != wechatpay.TradeStateRefund {
		t.Fatalf("trade_state after refund = %s", tx.TradeState)
	}
	if n.ID == rn.ID {
		t.Fatal("two events share an id")
	}
}

// TestAbandonAndClose: the customer walks away — no notification — and the
// merchant closes the order (204, signed and verified) before trying again
// with a new out_trade_no.
func TestAbandonAndClose(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608002", 100)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(w.api.URL+"/pay/control/abandon", "application/json", strings.NewReader(`{"out_trade_no":"RENT20260608002"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("abandon: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := w.client.Close(ctx, "RENT20260608002"); err != nil {
		t.Fatal(err)
	}
	tx, err := w.client.QueryByOutTradeNo(ctx, "RENT20260608002")
	if err != nil || tx.TradeState != wechatpay.TradeStateClosed {
		t.Fatalf("after close: %+v, %v", tx, err)
	}
	_, err = w.client.PrepayJSAPI(ctx, w.order("RENT20260608002", 100))
	asAPIError(t, err, 400, "ORDER_CLOSED")
	if _, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608003", 100)); err != nil {
		t.Fatalf("new out_trade_no: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if len(w.notifications()) != 0 {
		t.Fatal("an unpaid order was notified")
	}
}

// TestPathEscaping: out_trade_no may hold "|" and "*", which travel
// percent-encoded in the path. Client and simulator must sign and verify the
// same escaped form, below the /pay prefix.
func TestPathEscaping(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	const no = "RENT|2026*06_08-9"
	if _, err := w.client.PrepayJSAPI(ctx, w.order(no, 100)); err != nil {
		t.Fatal(err)
	}
	tx, err := w.client.QueryByOutTradeNo(ctx, no)
	if err != nil || tx.OutTradeNo != no {
		t.Fatalf("query: %+v, %v", tx, err)
	}
	if err := w.client.Close(ctx, no); err != nil {
		t.Fatal(err)
	}
}

// TestIdempotency: resending the same order returns the same prepay_id;
// changing it is OUT_TRADE_NO_USED; resending a refund never refunds twice.
func TestIdempotency(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	a, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608004", 500))
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608004", 500))
	if err != nil || a != b {
		t.Fatalf("resend: %q vs %q, %v", a, b, err)
	}
	_, err = w.client.PrepayJSAPI(ctx, w.order("RENT20260608004", 600))
	asAPIError(t, err, 403, "OUT_TRADE_NO_USED")

	p, _ := w.client.RequestPayment(appID, a)
	if status, body := w.payViaControl("RENT20260608004", p); status != http.StatusOK {
		t.Fatalf("pay: %d %s", status, body)
	}
	req := wechatpay.RefundRequest{OutTradeNo: "RENT20260608004", OutRefundNo: "R-0004", Refund: 300, Total: 500}
	r1, err := w.client.Refund(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := w.client.Refund(ctx, req)
	if err != nil || r2.RefundID != r1.RefundID {
		t.Fatalf("resent refund: %+v, %v", r2, err)
	}
	// 300 refunded once, so 200 remain: a second 300 is too much.
	_, err = w.client.Refund(ctx, wechatpay.RefundRequest{OutTradeNo: "RENT20260608004", OutRefundNo: "R-0005", Refund: 300, Total: 500})
	asAPIError(t, err, 400, "INVALID_REQUEST")
}

// TestWrongMerchantKey: a request signed with the wrong key gets 401
// SIGN_ERROR, and the client verified that answer before reporting it.
func TestWrongMerchantKey(t *testing.T) {
	w := newWorld(t, nil)
	wrong := w.newClient(func(c *wechatpay.Config) { c.PrivateKey = loadKey(t, wxgoKey) })
	_, err := wrong.PrepayJSAPI(context.Background(), w.order("RENT20260608005", 100))
	asAPIError(t, err, 401, "SIGN_ERROR")
}

// TestAnswersAreVerified: whatever happens to an answer on the way — a
// changed body, a changed header, a probe, a stale stamp, another platform
// key — the client refuses it with ErrSignature instead of believing it.
func TestAnswersAreVerified(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	if _, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608006", 100)); err != nil {
		t.Fatal(err)
	}
	tamper := func(edit func(*http.Response)) func(*wechatpay.Config) {
		return func(c *wechatpay.Config) {
			base := w.api.Client().Transport
			c.HTTPClient = &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil {
					edit(resp)
				}
				return resp, err
			})}
		}
	}
	replaceBody := func(old, new string) func(*http.Response) {
		return func(resp *http.Response) {
			b, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader(strings.Replace(string(b), old, new, 1)))
		}
	}
	tests := []struct {
		name string
		edit func(*wechatpay.Config)
		want string
	}{
		{"trade_state rewritten", tamper(replaceBody(`"NOTPAY"`, `"SUCCESS"`)), "does not match"},
		{"nonce rewritten", tamper(func(r *http.Response) { r.Header.Set("Wechatpay-Nonce", "x") }), "does not match"},
		{"signature removed", tamper(func(r *http.Response) { r.Header.Del("Wechatpay-Signature") }), "missing Wechatpay-Signature"},
		{"serial replaced", tamper(func(r *http.Response) { r.Header.Set("Wechatpay-Serial", "PUB_KEY_ID_OTHER") }), "unknown Wechatpay-Serial"},
		{"probe", tamper(func(r *http.Response) { r.Header.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/AAAA") }), "probe"},
		{"our clock 10 minutes ahead", func(c *wechatpay.Config) { c.Now = func() time.Time { return time.Now().Add(10 * time.Minute) } }, "away from now"},
		{"another platform key configured", func(c *wechatpay.Config) { c.PlatformPublicKey = &loadKey(t, officialKey).PublicKey }, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.newClient(tt.edit)
			tx, err := c.QueryByOutTradeNo(ctx, "RENT20260608006")
			if !errors.Is(err, wechatpay.ErrSignature) || !strings.Contains(err.Error(), tt.want) || tx != nil {
				t.Fatalf("got %+v, %v; want ErrSignature mentioning %q", tx, err, tt.want)
			}
		})
	}
}

// TestNotificationDuplicates: WeChat Pay may deliver a notification twice;
// both verify and carry the same event id, the key to process it once.
func TestNotificationDuplicates(t *testing.T) {
	w := newWorld(t, func(c *paysim.Config) { c.DuplicateNotifyRate = 1 })
	ctx := context.Background()
	id, err := w.client.PrepayJSAPI(ctx, w.order("RENT20260608007", 100))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := w.client.RequestPayment(appID, id)
	if status, body := w.payViaControl("RENT20260608007", p); status != http.StatusOK {
		t.Fatalf("pay: %d %s", status, body)
	}
	got := w.waitNotifications(2)
	if got[0].ID != got[1].ID || got[0].Transaction.TransactionID != got[1].Transaction.TransactionID {
		t.Fatalf("duplicates differ: %+v vs %+v", got[0], got[1])
	}
}

var (
	officialKey = wechatpay.TestOfficialKeyPEM
	wxgoKey     = wechatpay.TestWxgoKeyPEM
)

func loadKey(t testing.TB, pemText string) *rsa.PrivateKey {
	t.Helper()
	k, err := wechatpay.LoadPrivateKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
