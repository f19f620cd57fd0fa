package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
	"github.com/tacklegate/tacklegate/rental"
)

// callAPI sends JSON with an optional bearer token and decodes the answer.
func callAPI(t *testing.T, method, url, token string, in, out any) int {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, body)
		}
	}
	return resp.StatusCode
}

// TestDemoRentalThroughSimulator books and pays gear of the seeded demo
// shop as the mini-program would, with the payment made in the
// simulator's pay sheet; then `tacklegate reconcile`, pointed at the same
// database and simulator, finds WeChat Pay in agreement.
func TestDemoRentalThroughSimulator(t *testing.T) {
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "demo.db")
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + dbFile}, "demo")
	m := regexp.MustCompile(`simulator\s+(http://\S+)/sim`).FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("banner names no simulator:\n%s", r.stdout)
	}
	sim := m[1]

	var items struct {
		Items []struct {
			ID          int64  `json:"id"`
			Name        string `json:"name"`
			PricePerDay int64  `json:"price_per_day"`
			Deposit     int64  `json:"deposit"`
		} `json:"items"`
	}
	if st := callAPI(t, "GET", r.base+"/api/v1/items?tag=鲫鱼&limit=100", "", nil, &items); st != 200 || len(items.Items) < 2 {
		t.Fatalf("seeded 鲫鱼 gear: %d %+v", st, items)
	}
	var rod = items.Items[0]
	if !strings.Contains(rod.Name, "台钓竿") || rod.PricePerDay <= 0 || rod.Deposit <= 0 {
		t.Fatalf("first 鲫鱼 item: %+v", rod)
	}

	var login struct {
		JSCode string `json:"js_code"`
	}
	postJSON(t, sim+"/sim/api/customers/o-demo-renter/login", nil, &login)
	var session struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if st := callAPI(t, "POST", r.base+"/api/v1/auth/wechat", "", map[string]string{"code": login.JSCode}, &session); st != 200 {
		t.Fatalf("login: %d", st)
	}
	tok := session.Tokens.AccessToken
	from := rental.DateOf(time.Now()).AddDays(1)
	type order struct {
		ID    int64  `json:"id"`
		State string `json:"state"`
		Total int64  `json:"total"`
	}
	var placed struct{ Order order }
	if st := callAPI(t, "POST", r.base+"/api/v1/orders", tok, map[string]any{"lines": []map[string]any{{"item_id": rod.ID, "qty": 1}},
		"from": from.String(), "to": from.AddDays(2).String()}, &placed); st != 201 || placed.Order.Total != 2*rod.PricePerDay+rod.Deposit {
		t.Fatalf("order: %d %+v", st, placed)
	}
	var pay struct {
		Payment struct {
			OutTradeNo string `json:"out_trade_no"`
		} `json:"payment"`
		RequestPayment map[string]string `json:"request_payment"`
	}
	if st := callAPI(t, "POST", fmt.Sprintf("%s/api/v1/orders/%d/pay", r.base, placed.Order.ID), tok, nil, &pay); st != 200 {
		t.Fatalf("pay: %d", st)
	}
	req := map[string]string{"out_trade_no": pay.Payment.OutTradeNo}
	for k, v := range pay.RequestPayment {
		req[k] = v
	}
	if code := postJSON(t, sim+"/pay/control/pay", req, nil); code != 200 {
		t.Fatalf("pay in the simulator: HTTP %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got struct{ Order order }
		callAPI(t, "GET", fmt.Sprintf("%s/api/v1/orders/%d", r.base, placed.Order.ID), tok, nil, &got)
		if got.Order.State == "paid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order not paid through the notification: %+v", got.Order)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// reconcile, as an operator would run it beside the demo.
	cfg := wxsim.DefaultConfig()
	vars := map[string]string{
		"TACKLEGATE_DATABASE_URL": "sqlite://" + dbFile, "TACKLEGATE_LOG_LEVEL": "warn",
		"TACKLEGATE_WECHAT_APP_ID": cfg.AppID, "TACKLEGATE_WECHAT_APP_SECRET": cfg.AppSecret,
		"TACKLEGATE_WECHATPAY_MCH_ID": simMchID, "TACKLEGATE_WECHATPAY_SERIAL_NO": simSerial, "TACKLEGATE_WECHATPAY_API_V3_KEY": simAPIv3Key,
		"TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE":         filepath.Join(dir, "sim", "wechatpay_merchant_key.pem"),
		"TACKLEGATE_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": filepath.Join(dir, "sim", "wechatpay_platform_public_key.pem"),
		"TACKLEGATE_WECHATPAY_PLATFORM_SERIAL":          paysim.DefaultPlatformSerial, "TACKLEGATE_WECHATPAY_API_BASE": sim + "/pay",
	}
	var out, errOut lockedBuffer
	if code := run(context.Background(), []string{"reconcile"}, envFrom(vars), &out, &errOut); code != exitOK {
		t.Fatalf("reconcile: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "1 orders, 1 payment attempts") || !strings.Contains(out.String(), "everything matches") ||
		!strings.Contains(out.String(), "账单 bill "+time.Now().In(rental.Shanghai()).Format("2006-01-02")+": not made yet") ||
		!strings.Contains(out.String(), "账单 bills of 30 more day(s): no trades") {
		t.Errorf("reconcile output:\n%s", out.String())
	}
	out, errOut = lockedBuffer{}, lockedBuffer{}
	if code := run(context.Background(), []string{"reconcile", "--json", "--from", from.AddDays(-3).String()}, envFrom(vars), &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), `"payments": 1`) || !strings.Contains(out.String(), `"status": "compared"`) {
		t.Errorf("reconcile --json: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
}

func TestReconcileCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		in   string // on stdout (help) or stderr
	}{
		{[]string{"reconcile", "--help"}, exitOK, "Exit status"},
		{[]string{"reconcile", "--from", "yesterday"}, exitUsage, "--from"},
		{[]string{"reconcile", "--from", "2026-05-02", "--to", "2026-05-01"}, exitUsage, "before"},
		{[]string{"reconcile"}, exitUsage, "WeChat Pay is not configured"},
	} {
		var out, errOut lockedBuffer
		code := run(context.Background(), tc.args, envFrom(map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "x.db")}), &out, &errOut)
		if code != tc.want || !strings.Contains(out.String()+errOut.String(), tc.in) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.want, tc.in, out.String(), errOut.String())
		}
	}
}

// TestSeedShopIdempotent: a restarted demo keeps the catalog it has.
func TestSeedShopIdempotent(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := seedShop(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	items, err := db.Items(ctx, rental.ItemFilter{IncludeInactive: true, Limit: 100})
	if err != nil || len(items) != len(demoCatalog) {
		t.Fatalf("%d items after seeding twice, want %d (%v)", len(items), len(demoCatalog), err)
	}
	cats := map[rental.Category]bool{}
	units := 0
	for _, it := range items {
		cats[it.Category] = true
		us, _ := db.Units(ctx, it.ID)
		units += len(us)
	}
	if len(cats) != 6 || units < 40 {
		t.Errorf("%d categories, %d units", len(cats), units)
	}
	set, _ := db.ShopSettings(ctx)
	if !set.WaivesDeposit("gold") || set.Hours[6].Open != 5*60 {
		t.Errorf("settings: %+v", set)
	}
}
