package gateway

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/rentalhook"
	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
	"github.com/tacklegate/tacklegate/rental"
)

// The rental API end to end: real WeChat, WeCom and WeChat Pay clients
// against the simulator over loopback HTTP, the gateway on a real listener
// (WeChat Pay's notifications reach it over HTTP), a real database, the
// outbox worker delivering refunds and webhooks.

const (
	testMchID    = "1900000109"
	testSerial   = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3Key = "tacklegateSimulatorApiV3Key00032"
)

type clockFn func() time.Time

func (f clockFn) Now() time.Time { return f().UTC() }

// hookSink is the shop's other rental system: it checks every webhook's
// signature and records the events; it can fail on purpose.
type hookSink struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	events []store.OrderEvent
	seen   map[string]int // deliveries per event id
	bad    int            // deliveries with a bad signature
	fail   atomic.Int32   // answer 500 this many times
	refuse atomic.Bool    // answer 400 (a permanent refusal)
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{secret: []byte("rental-webhook-secret-0123"), seen: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Tacklegate-Timestamp")
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("X-Tacklegate-Signature") != members.Sign(h.secret, ts, body) {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if h.refuse.Load() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if h.fail.Load() > 0 {
			h.fail.Add(-1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var ev store.OrderEvent
		json.Unmarshal(body, &ev) //nolint:errcheck
		if ev.ID != r.Header.Get("X-Tacklegate-Delivery") || ev.ID != r.Header.Get("Idempotency-Key") || ev.Type != r.Header.Get("X-Tacklegate-Event") {
			h.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if h.seen[ev.ID] == 0 {
			h.events = append(h.events, ev)
		}
		h.seen[ev.ID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) types(order rental.OrderID) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if ev.Order.ID == int64(order) {
			out = append(out, ev.Type)
		}
	}
	return out
}

type rentalEnv struct {
	*idEnv
	base     string
	rent     *Rental
	pay      *paysim.Server
	client   *wechatpay.Client
	platform *rsa.PrivateKey
	appID    string
	hook     *hookSink
	drop     atomic.Bool // lose WeChat Pay notifications
	staff    string      // a staff member's access token
	owner    string
}

// newRentalEnv wires everything. With background, the payment jobs run on
// short timers as in production; without, the test calls Sync and
// ProcessNotifications itself. The outbox worker always runs.
func newRentalEnv(t *testing.T, tg storetest.Target, background bool) *rentalEnv {
	t.Helper()
	return newRentalEnvWith(t, tg, background, rentalEnvOptions{})
}

// rentalEnvOptions add to newRentalEnv: more routes (called with the
// server before it starts serving), and the demo's simulator helpers.
type rentalEnvOptions struct {
	routes func(*Server)
	demo   bool
}

func newRentalEnvWith(t *testing.T, tg storetest.Target, background bool, opt rentalEnvOptions) *rentalEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var jobs sync.WaitGroup
	t.Cleanup(func() { cancel(); jobs.Wait() })
	cfg := wxsim.DefaultConfig()
	sim, err := wxsim.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e := &rentalEnv{appID: cfg.AppID, hook: newHookSink(t)}
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if e.platform, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	e.pay, err = paysim.New(paysim.Config{
		MchID: testMchID, AppID: cfg.AppID, MerchantPublicKey: &merchant.PublicKey, MerchantSerial: testSerial, APIv3Key: testAPIv3Key,
		PlatformKey: e.platform, Now: sim.Clock().Now, RetryScale: 0.001, PollInterval: 5 * time.Millisecond, Seed: 3,
		Fault: func(endpoint string) (paysim.Fault, bool) {
			if endpoint == paysim.EndpointNotify && e.drop.Load() {
				return paysim.Fault{Drop: true}, true
			}
			return paysim.Fault{}, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pay.Close)
	sim.MountPay(e.pay.Handler())
	e.client, err = wechatpay.New(wechatpay.Config{MchID: testMchID, SerialNo: testSerial, PrivateKey: merchant, APIv3Key: testAPIv3Key,
		PlatformPublicKey: &e.platform.PublicKey, PlatformSerial: e.pay.PlatformSerial(), BaseURL: sim.PayBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	wc, err := wechat.New(wechat.Config{AppID: cfg.AppID, AppSecret: cfg.AppSecret, APIBase: sim.WeChatBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wc.Close() })
	wk, err := wecom.New(wecom.Config{CorpID: cfg.CorpID, Secret: cfg.CorpSecret, AgentID: cfg.AgentID, APIBase: sim.WeComBase(), Now: sim.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wk.Close() })

	db, err := store.Open(ctx, tg.Fresh(t), store.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := db.UseDataKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := SeedOwner(ctx, db, "owner", "fishing-shop-2026"); err != nil {
		t.Fatal(err)
	}
	db.EmitOrderEvents(true)

	e.rent = &Rental{DB: db, Clock: clockFn(sim.Clock().Now), Pay: e.client, AppID: cfg.AppID,
		Timings: PayTimings{NotifyPoll: 20 * time.Millisecond, SyncEvery: 100 * time.Millisecond}}
	if opt.demo {
		e.rent.Sim = &DemoSim{URL: sim.URL()}
	}
	logs := &syncBuffer{}
	sender := sms.NewLogSender(slogTo(logs))
	srv, _ := newTestServer(t, Options{
		Callbacks: &Callbacks{Pay: e.client, Inbound: e.rent.WatchInbound(db), MaxSkew: 5 * time.Minute, Now: sim.Clock().Now},
		Identity:  &Identity{DB: db, DataKey: key, WeChat: wc, WeCom: wk, SMS: sender, SMSLimits: DefaultSMSLimits, OwnerUsername: "owner"},
		Rental:    e.rent,
	})
	e.idEnv = &idEnv{srv: srv, db: db, sim: sim, sms: sender}
	if opt.routes != nil {
		opt.routes(srv)
	}
	e.base = startHTTP(t, srv)
	e.rent.NotifyURL = e.base + "/callbacks/wechatpay"

	hook := &rentalhook.Webhook{URL: e.hook.srv.URL, Secret: e.hook.secret}
	w := &store.OutboxWorker{DB: db, Poll: 20 * time.Millisecond, BaseDelay: 20 * time.Millisecond, MaxAttempts: 4,
		Handlers: map[string]store.Deliver{KindRefund: e.rent.RefundDeliverer(), store.KindRentalWebhook: hook.Deliverer()}}
	jobs.Add(1)
	go func() { defer jobs.Done(); w.Run(ctx) }()
	if background {
		jobs.Add(1)
		go func() { defer jobs.Done(); e.rent.Run(ctx) }()
	}

	e.owner = e.ownerLogin(t)
	e.call(t, "POST", "/api/v1/owner/staff", e.owner, map[string]string{"wecom_userid": "laowang", "name": "老王"})
	code, _ := sim.OAuthCode("laowang")
	e.staff = e.tokenOf(t, "POST", "/api/v1/auth/wecom", "", map[string]string{"code": code})
	return e
}

// api calls a route and decodes the answer into out (when not nil).
func (e *rentalEnv) api(t *testing.T, method, path, tok string, in, out any) int {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, body := do(t, e.srv, req)
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

type orderAnswer struct {
	Order          orderView               `json:"order"`
	Payment        paymentView             `json:"payment"`
	RequestPayment wechatpay.PaymentParams `json:"request_payment"`
	Error          struct{ Code, Message string }
}

func (e *rentalEnv) order(t *testing.T, tok string, id rental.OrderID) orderView {
	t.Helper()
	var out orderAnswer
	path := "/api/v1/orders/" + strconv.FormatInt(int64(id), 10)
	if tok == e.staff {
		path = "/api/v1/staff/orders/" + strconv.FormatInt(int64(id), 10)
	}
	if st := e.api(t, "GET", path, tok, nil, &out); st != 200 {
		t.Fatalf("GET order %d: %d %+v", id, st, out.Error)
	}
	return out.Order
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stock creates an item with units through the owner API.
func (e *rentalEnv) stock(t *testing.T, name string, cat rental.Category, price, deposit rental.Fen, units int, tags ...string) rental.ItemID {
	t.Helper()
	var out struct{ Item itemView }
	if st := e.api(t, "POST", "/api/v1/owner/items", e.owner, map[string]any{"category": cat, "name": name, "tags": tags,
		"price_per_day": price, "deposit": deposit}, &out); st != 201 {
		t.Fatalf("create item: %d", st)
	}
	for i := range units {
		if st := e.api(t, "POST", fmt.Sprintf("/api/v1/owner/items/%d/units", out.Item.ID), e.owner,
			map[string]any{"serial": fmt.Sprintf("%s-%02d", strings.ToUpper(string(cat)), int(out.Item.ID)*100+i)}, nil); st != 201 {
			t.Fatalf("create unit: %d", st)
		}
	}
	return out.Item.ID
}

func tomorrow(e *rentalEnv) rental.Date { return rental.DateOf(e.sim.Clock().Now()).AddDays(1) }

// placeOrder orders qty of item for days from tomorrow.
func (e *rentalEnv) placeOrder(t *testing.T, tok string, item rental.ItemID, qty, days int) orderView {
	t.Helper()
	from := tomorrow(e)
	var out orderAnswer
	st := e.api(t, "POST", "/api/v1/orders", tok, map[string]any{"lines": []map[string]any{{"item_id": item, "qty": qty}},
		"from": from.String(), "to": from.AddDays(days).String()}, &out)
	if st != 201 {
		t.Fatalf("place order: %d %+v", st, out.Error)
	}
	return out.Order
}

// startPay calls the pay route and returns what wx.requestPayment gets.
func (e *rentalEnv) startPay(t *testing.T, tok string, id rental.OrderID) orderAnswer {
	t.Helper()
	var out orderAnswer
	if st := e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/pay", id), tok, nil, &out); st != 200 {
		t.Fatalf("pay: %d %+v", st, out.Error)
	}
	return out
}

// customerPays is the customer confirming in WeChat's pay sheet.
func (e *rentalEnv) customerPays(t *testing.T, a orderAnswer) {
	t.Helper()
	p := a.RequestPayment
	if err := e.pay.Pay(a.Payment.OutTradeNo, paysim.PaymentParams{TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package,
		SignType: p.SignType, PaySign: p.PaySign}); err != nil {
		t.Fatalf("the customer pays: %v", err)
	}
}

func pngPhoto(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{shade, uint8(x * 30), uint8(y * 30), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type photoAnswer struct {
	Photos []struct {
		ID     rental.EvidenceID `json:"id"`
		SHA256 string            `json:"sha256"`
	} `json:"photos"`
}

func (e *rentalEnv) upload(t *testing.T, id rental.OrderID, files map[string][]byte) (int, photoAnswer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, content := range files {
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(content) //nolint:errcheck
	}
	mw.WriteField("caption", "验货") //nolint:errcheck
	mw.Close()
	req := httptest.NewRequest("POST", fmt.Sprintf("/api/v1/staff/orders/%d/photos", id), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.staff)
	resp, body := do(t, e.srv, req)
	var out photoAnswer
	json.Unmarshal(body, &out) //nolint:errcheck
	return resp.StatusCode, out
}

// TestRentalEndToEnd is issue 6's story through the simulator: reserve,
// pay (the notification arrives and the order is paid), pickup and return
// inspections with photos, the deposit refunded minus a late fee, the
// refund notification settling the order; the evidence chain verifies,
// exports, and a changed stored photo is detected; every step reached the
// shop's other rental system as a signed webhook; reconciliation agrees.
func TestRentalEndToEnd(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			e := newRentalEnv(t, tg, true)
			ctx := context.Background()
			rod := e.stock(t, "台钓竿 4.5m", rental.CategoryRod, 1800, 25000, 2, "鲫鱼")
			e.stock(t, "海竿 4.2m", rental.CategoryRod, 3000, 50000, 1, "海钓")

			// Browsing is public: filter by tag, page with the cursor.
			var page struct {
				Items      []itemView `json:"items"`
				NextCursor string     `json:"next_cursor"`
			}
			if st := e.api(t, "GET", "/api/v1/items?tag=鲫鱼", "", nil, &page); st != 200 || len(page.Items) != 1 || page.Items[0].ID != rod {
				t.Fatalf("items by tag: %d %+v", st, page)
			}
			e.api(t, "GET", "/api/v1/items?category=rod&limit=1", "", nil, &page)
			if len(page.Items) != 1 || page.NextCursor == "" {
				t.Fatalf("first page: %+v", page)
			}
			e.api(t, "GET", "/api/v1/items?category=rod&limit=1&cursor="+page.NextCursor, "", nil, &page)
			if len(page.Items) != 1 || page.Items[0].ID == rod {
				t.Fatalf("second page: %+v", page)
			}

			alice := e.customerLogin(t, "o-alice")
			from := tomorrow(e)
			var avail struct {
				Free int `json:"free"`
				Days []struct {
					Free int `json:"free"`
				} `json:"days"`
			}
			path := fmt.Sprintf("/api/v1/items/%d/availability?from=%s&to=%s", rod, from, from.AddDays(2))
			if st := e.api(t, "GET", path, "", nil, &avail); st != 200 || avail.Free != 2 || len(avail.Days) != 2 {
				t.Fatalf("availability: %d %+v", st, avail)
			}

			// Reserve both units; a second customer asking for one is told
			// what ran out.
			o := e.placeOrder(t, alice, rod, 2, 2)
			if o.State != rental.StateAwaitingPayment || o.Rent != 2*2*1800 || o.Deposit != 2*25000 || o.Total != 2*2*1800+2*25000 {
				t.Fatalf("placed: %+v", o)
			}
			bob := e.customerLogin(t, "o-bob")
			var conflict orderAnswer
			st := e.api(t, "POST", "/api/v1/orders", bob, map[string]any{"lines": []map[string]any{{"item_id": rod, "qty": 1}},
				"from": from.String(), "to": from.AddDays(1).String()}, &conflict)
			if st != 409 || !strings.Contains(conflict.Error.Message, "台钓竿 4.5m") {
				t.Fatalf("double booking: %d %+v", st, conflict.Error)
			}
			// Bob cannot see Alice's order.
			if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d", o.ID), bob, nil, nil); st != 404 {
				t.Errorf("another customer's order: %d", st)
			}
			if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), bob, nil, nil); st != 404 {
				t.Errorf("another customer's evidence: %d", st)
			}

			// Pay: prepay, wx.requestPayment in the simulator, the
			// notification reaches the gateway and the order is paid.
			a := e.startPay(t, alice, o.ID)
			if a.Payment.Amount != o.Total || !strings.HasPrefix(a.RequestPayment.Package, "prepay_id=") || a.RequestPayment.PaySign == "" {
				t.Fatalf("pay: %+v", a)
			}
			views := e.pay.Orders()
			if len(views) != 1 || views[0].Total != int64(o.Total) || views[0].OpenID != "o-alice" || !strings.HasPrefix(views[0].Description, "渔具租赁") ||
				views[0].NotifyURL != e.base+"/callbacks/wechatpay" || views[0].TimeExpire.IsZero() {
				t.Fatalf("prepay at WeChat Pay: %+v", views)
			}
			// Paying again after closing the sheet resumes the same attempt.
			if again := e.startPay(t, alice, o.ID); again.Payment.OutTradeNo != a.Payment.OutTradeNo {
				t.Errorf("second pay call made a new attempt: %s vs %s", again.Payment.OutTradeNo, a.Payment.OutTradeNo)
			}
			e.customerPays(t, a)
			eventually(t, "the order to be paid", func() bool { return e.order(t, alice, o.ID).State == rental.StatePaid })
			paid := e.order(t, alice, o.ID)
			if paid.Paid != o.Total || len(paid.Payments) != 1 || paid.Payments[0].State != rental.PaymentSucceeded {
				t.Fatalf("paid order: %+v", paid)
			}
			// A redelivered notification is stored once and changes nothing.
			history := len(paid.History)
			e.pay.Redeliver(e.pay.Notifications()[0].EventID) //nolint:errcheck
			eventually(t, "the redelivery", func() bool {
				n := 0
				for _, at := range e.pay.Notifications() {
					if at.Delivered {
						n++
					}
				}
				return n >= 2
			})
			if n, _ := e.db.CountInbound(ctx, rental.ChannelWeChatPay); n != 1 {
				t.Errorf("stored %d notifications, want 1", n)
			}
			if again := e.order(t, alice, o.ID); len(again.History) != history || again.Paid != o.Total {
				t.Errorf("redelivery changed the order: %+v", again)
			}

			// Pickup: photos uploaded at the counter, every unit inspected.
			sta, photos := e.upload(t, o.ID, map[string][]byte{"rod1.png": pngPhoto(t, 10), "rod2.png": pngPhoto(t, 20)})
			if sta != 201 || len(photos.Photos) != 2 {
				t.Fatalf("upload: %d %+v", sta, photos)
			}
			if st, _ := e.upload(t, o.ID, map[string][]byte{"notes.txt": []byte("not a photo")}); st != 400 {
				t.Errorf("a text file as a photo: %d", st)
			}
			units := func(cond rental.Condition, photos ...rental.EvidenceID) []map[string]any {
				var out []map[string]any
				for i, l := range paid.Lines {
					u := map[string]any{"unit_id": l.UnitID, "condition": cond, "notes": "竿身无划痕"}
					if i < len(photos) {
						u["photos"] = []rental.EvidenceID{photos[i]}
					}
					out = append(out, u)
				}
				return out
			}
			var picked orderAnswer
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/staff/orders/%d/pickup", o.ID), e.staff,
				map[string]any{"notes": "交付时检查完好", "units": units(rental.ConditionGood, photos.Photos[0].ID, photos.Photos[1].ID)}, &picked); st != 200 {
				t.Fatalf("pickup: %d %+v", st, picked.Error)
			}
			if picked.Order.State != rental.StatePickedUp || len(picked.Order.Inspections) != 1 || picked.Order.Lines[0].Serial == "" {
				t.Fatalf("after pickup: %+v", picked.Order)
			}
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/staff/orders/%d/pickup", o.ID), e.staff,
				map[string]any{"units": units(rental.ConditionGood)}, nil); st != 409 {
				t.Errorf("second pickup: %d", st)
			}
			var confirmed struct{ Inspection inspectionView }
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/inspections/pickup/confirm", o.ID), alice, nil, &confirmed); st != 200 || !confirmed.Inspection.Confirmed {
				t.Fatalf("confirm pickup: %d %+v", st, confirmed)
			}

			// Return 13 hours after the due time: 12 hours' grace, then one
			// started day late at ¥20. The deposit comes back minus it.
			e.sim.Advance(time.Until(paid.Due) + 13*time.Hour)
			_, back := e.upload(t, o.ID, map[string][]byte{"back.png": pngPhoto(t, 99)})
			var returned orderAnswer
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/staff/orders/%d/return", o.ID), e.staff,
				map[string]any{"units": units(rental.ConditionGood, back.Photos[0].ID)}, &returned); st != 200 {
				t.Fatalf("return: %d %+v", st, returned.Error)
			}
			s := returned.Order.Settlement
			if returned.Order.State != rental.StateReturned || s == nil || s.DaysLate != 1 || s.LateFee != 2000 || s.Refund != o.Deposit-2000 {
				t.Fatalf("after return: %+v settlement %+v", returned.Order, s)
			}
			eventually(t, "the refund to settle the order", func() bool { return e.order(t, alice, o.ID).State == rental.StateSettled })
			settled := e.order(t, alice, o.ID)
			if settled.Refunded != o.Deposit-2000 || len(settled.Refunds) != 1 || settled.Refunds[0].State != rental.RefundSucceeded {
				t.Fatalf("settled: %+v", settled)
			}
			views = e.pay.Orders()
			if len(views[0].Refunds) != 1 || views[0].Refunds[0].Refund != int64(o.Deposit-2000) || views[0].Refunds[0].Status != "SUCCESS" {
				t.Fatalf("refund at WeChat Pay: %+v", views[0].Refunds)
			}
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/inspections/return/confirm", o.ID), alice, nil, nil); st != 200 {
				t.Errorf("confirm return: %d", st)
			}

			// Every step reached the other rental system, signed, once each.
			eventually(t, "the webhooks", func() bool { return len(e.hook.types(o.ID)) == 5 })
			if got := strings.Join(e.hook.types(o.ID), ","); got != "order.created,order.paid,order.picked_up,order.returned,order.settled" {
				t.Errorf("webhook events: %s", got)
			}
			e.hook.mu.Lock()
			if e.hook.bad != 0 {
				t.Errorf("%d webhooks with a bad signature", e.hook.bad)
			}
			e.hook.mu.Unlock()

			// The evidence chain verifies; the export carries every file and
			// a manifest whose hashes match them.
			var ev evidenceReport
			if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), alice, nil, &ev); st != 200 || !ev.Verification.OK {
				t.Fatalf("evidence: %d %+v", st, ev.Verification)
			}
			// 3 photos, 2 inspection records, 2 confirmations.
			if len(ev.Items) != 7 || ev.Chain.Count != 7 || len(ev.Verification.Inspections) != 2 || !ev.Verification.Inspections[0].MatchesRecord {
				t.Fatalf("evidence items: %d %+v", len(ev.Items), ev.Verification)
			}
			req := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/orders/%d/evidence?format=zip", o.ID), nil)
			req.Header.Set("Authorization", "Bearer "+e.staff)
			resp, zipBody := do(t, e.srv, req)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
				t.Fatalf("zip: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			checkZip(t, zipBody, 7, true)
			// A photo is served to the order's customer.
			req = httptest.NewRequest("GET", fmt.Sprintf("/api/v1/orders/%d/evidence/%d", o.ID, photos.Photos[0].ID), nil)
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, img := do(t, e.srv, req)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || hexSHA(img) != photos.Photos[0].SHA256 {
				t.Errorf("photo: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}

			// Reconciliation agrees with WeChat Pay.
			day := rental.DateOf(e.sim.Clock().Now())
			rep, err := e.rent.Reconcile(ctx, day.AddDays(-10).Start(), day.AddDays(1).Start(), nil)
			if err != nil || len(rep.Mismatches) != 0 || rep.Payments != 1 || rep.Refunds != 1 {
				t.Fatalf("reconcile: %v %+v", err, rep)
			}

			// Someone changes a stored photo: the chain says where.
			var sealed []byte
			e.db.Gorm.Raw("SELECT content FROM evidence WHERE id = ?", photos.Photos[1].ID).Row().Scan(&sealed) //nolint:errcheck
			sealed[len(sealed)-1] ^= 0xff
			if err := e.db.Gorm.Exec("UPDATE evidence SET content = ? WHERE id = ?", sealed, photos.Photos[1].ID).Error; err != nil {
				t.Fatal(err)
			}
			ev = evidenceReport{}
			e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), e.owner, nil, &ev)
			if ev.Verification.OK || ev.Verification.Break == nil || ev.Verification.Break.ID != photos.Photos[1].ID || ev.Verification.Break.Reason != rental.BreakUnreadable {
				t.Fatalf("altered photo not detected: %+v", ev.Verification)
			}
			req = httptest.NewRequest("GET", fmt.Sprintf("/api/v1/orders/%d/evidence?format=zip", o.ID), nil)
			req.Header.Set("Authorization", "Bearer "+e.owner)
			_, zipBody = do(t, e.srv, req)
			checkZip(t, zipBody, 6, false)

			// And WeChat Pay's record disagreeing with ours shows.
			e.db.Gorm.Exec("UPDATE payments SET state = 'pending' WHERE order_id = ?", o.ID) //nolint:errcheck
			rep, err = e.rent.Reconcile(ctx, day.AddDays(-10).Start(), day.AddDays(1).Start(), nil)
			if err != nil || len(rep.Mismatches) == 0 || rep.Mismatches[0].Kind != MismatchPaidThereNotHere {
				t.Errorf("reconcile after tampering: %v %+v", err, rep.Mismatches)
			}
		})
	}
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// checkZip opens an evidence export: files files whose SHA-256 match the
// manifest, and the manifest's verification result.
func checkZip(t *testing.T, b []byte, files int, ok bool) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		contents[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var m evidenceReport
	if err := json.Unmarshal(contents["manifest.json"], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if _, has := contents["README.txt"]; !has {
		t.Error("no README.txt in the export")
	}
	n := 0
	for _, it := range m.Items {
		if it.File == "" {
			continue
		}
		n++
		if hexSHA(contents[it.File]) != it.SHA256 {
			t.Errorf("%s: hash differs from the manifest", it.File)
		}
	}
	if n != files || m.Verification.OK != ok {
		t.Errorf("export: %d files (want %d), verification %+v (want ok=%v)", n, files, m.Verification, ok)
	}
}

// sendNotification plays WeChat Pay (or someone pretending to be it): it
// encrypts a resource with the APIv3 key and signs the envelope with key,
// age seconds in the past.
func (e *rentalEnv) sendNotification(t *testing.T, key *rsa.PrivateKey, id, eventType string, resource any, age time.Duration, apiV3Key string) int {
	t.Helper()
	plain, _ := json.Marshal(resource)
	nonce := "n" + strconv.FormatInt(time.Now().UnixNano()%1e11, 10)
	nonce = (nonce + "000000000000")[:12]
	block, _ := aes.NewCipher([]byte(apiV3Key))
	gcm, _ := cipher.NewGCM(block)
	aad := "transaction"
	if strings.HasPrefix(eventType, "REFUND.") {
		aad = "refund"
	}
	ct := gcm.Seal(nil, []byte(nonce), plain, []byte(aad))
	now := e.sim.Clock().Now().Add(-age)
	body, _ := json.Marshal(map[string]any{"id": id, "create_time": now.Format(time.RFC3339), "resource_type": "encrypt-resource",
		"event_type": eventType, "summary": "支付成功", "resource": map[string]string{"original_type": aad, "algorithm": "AEAD_AES_256_GCM",
			"ciphertext": base64.StdEncoding.EncodeToString(ct), "associated_data": aad, "nonce": nonce}})
	ts := strconv.FormatInt(now.Unix(), 10)
	hnonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	digest := sha256.Sum256([]byte(ts + "\n" + hnonce + "\n" + string(body) + "\n"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.base+"/callbacks/wechatpay", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Wechatpay-Timestamp", ts)
	req.Header.Set("Wechatpay-Nonce", hnonce)
	req.Header.Set("Wechatpay-Signature", base64.StdEncoding.EncodeToString(sig))
	req.Header.Set("Wechatpay-Serial", e.pay.PlatformSerial())
	req.Header.Set("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func transaction(appID, mchID, outTradeNo string, total rental.Fen, at time.Time) map[string]any {
	return map[string]any{"appid": appID, "mchid": mchID, "out_trade_no": outTradeNo, "transaction_id": "4200" + strconv.FormatInt(at.UnixNano(), 10)[:16],
		"trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": at.Format(time.RFC3339),
		"payer": map[string]string{"openid": "o-alice"}, "amount": map[string]any{"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}}
}

// TestPayNotificationsForgedReplayedOrWrong: forged, stale and probe
// notifications are refused and stored nowhere; authentic ones with a wrong
// amount, appid or mchid, or for an unknown order, are acknowledged (so
// WeChat Pay does not retry for a day), recorded for reconciliation and
// applied nowhere; a replayed one is a no-op.
func TestPayNotificationsForgedReplayedOrWrong(t *testing.T) {
	e := newRentalEnv(t, storetest.Target{Name: "sqlite"}, false)
	ctx := context.Background()
	rod := e.stock(t, "台钓竿 3.6m", rental.CategoryRod, 1500, 20000, 1)
	alice := e.customerLogin(t, "o-alice")
	o := e.placeOrder(t, alice, rod, 1, 1)
	a := e.startPay(t, alice, o.ID)
	no := a.Payment.OutTradeNo
	now := e.sim.Clock().Now()
	before := e.order(t, alice, o.ID)
	stored := func() int64 { n, _ := e.db.CountInbound(ctx, rental.ChannelWeChatPay); return n }

	impostor, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := transaction(e.appID, testMchID, no, o.Total, now)
	for _, tc := range []struct {
		name   string
		key    *rsa.PrivateKey
		age    time.Duration
		apiKey string
		want   int
	}{
		{"signed by someone else", impostor, 0, testAPIv3Key, 401},
		{"captured and replayed 10 minutes later", e.platform, 10 * time.Minute, testAPIv3Key, 401},
		{"signed but not decryptable", e.platform, 0, "another32characterAPIv3keyXXXXXX", 400},
	} {
		if st := e.sendNotification(t, tc.key, "EV-"+tc.name, "TRANSACTION.SUCCESS", good, tc.age, tc.apiKey); st != tc.want {
			t.Errorf("%s: answered %d, want %d", tc.name, st, tc.want)
		}
	}
	if n := stored(); n != 0 {
		t.Fatalf("refused notifications were stored: %d", n)
	}

	// Authentic, but not for this order as it stands.
	wrong := map[string]map[string]any{
		"EV-amount":  transaction(e.appID, testMchID, no, o.Total-1, now),
		"EV-appid":   transaction("wx0000000000000000", testMchID, no, o.Total, now),
		"EV-mchid":   transaction(e.appID, "1900000999", no, o.Total, now),
		"EV-unknown": transaction(e.appID, testMchID, "SOMEONEELSE0001", 999, now),
	}
	for id, res := range wrong {
		if st := e.sendNotification(t, e.platform, id, "TRANSACTION.SUCCESS", res, 0, testAPIv3Key); st != 204 {
			t.Errorf("%s: answered %d, want 204", id, st)
		}
	}
	if _, err := e.rent.ProcessNotifications(ctx); err != nil {
		t.Fatal(err)
	}
	after := e.order(t, alice, o.ID)
	if after.State != rental.StateAwaitingPayment || after.Paid != 0 || len(after.History) != len(before.History) || after.Payments[0].State != rental.PaymentPending {
		t.Fatalf("a wrong notification changed the order: %+v", after)
	}
	var anomalies struct {
		Anomalies []store.PayAnomaly `json:"anomalies"`
	}
	e.api(t, "GET", "/api/v1/owner/payments/anomalies", e.owner, nil, &anomalies)
	kinds := map[string]bool{}
	for _, an := range anomalies.Anomalies {
		kinds[an.Kind] = true
	}
	for _, k := range []string{store.AnomalyAmountMismatch, store.AnomalyForeignApp, store.AnomalyForeignMerchant, store.AnomalyUnknownTrade} {
		if !kinds[k] {
			t.Errorf("no %s anomaly recorded: %+v", k, anomalies.Anomalies)
		}
	}
	if pending, _ := e.db.PendingPayNotifications(ctx, 10); len(pending) != 0 {
		t.Errorf("notifications left unprocessed: %v", pending)
	}

	// The real payment; then the same notification id again, freshly
	// signed (a replay within the window), and a duplicate with a new id.
	if st := e.sendNotification(t, e.platform, "EV-real", "TRANSACTION.SUCCESS", good, 0, testAPIv3Key); st != 204 {
		t.Fatalf("real notification: %d", st)
	}
	e.rent.ProcessNotifications(ctx) //nolint:errcheck
	paid := e.order(t, alice, o.ID)
	if paid.State != rental.StatePaid || paid.Paid != o.Total {
		t.Fatalf("the real notification was not applied: %+v", paid)
	}
	var version int64
	e.db.Gorm.Raw("SELECT version FROM orders WHERE id = ?", o.ID).Row().Scan(&version) //nolint:errcheck
	for _, id := range []string{"EV-real", "EV-duplicate"} {
		if st := e.sendNotification(t, e.platform, id, "TRANSACTION.SUCCESS", good, 0, testAPIv3Key); st != 204 {
			t.Errorf("%s: %d", id, st)
		}
	}
	e.rent.ProcessNotifications(ctx) //nolint:errcheck
	var v2 int64
	e.db.Gorm.Raw("SELECT version FROM orders WHERE id = ?", o.ID).Row().Scan(&v2) //nolint:errcheck
	if v2 != version || len(e.order(t, alice, o.ID).History) != len(paid.History) {
		t.Errorf("replayed notifications changed the order (version %d → %d)", version, v2)
	}
	if n := stored(); n != 6 { // 4 wrong, the real one, one new id; the replay is stored once
		t.Errorf("stored %d notifications, want 6", n)
	}
}

// TestLateNotificationExpiryAndOrphans: a payment whose notification is
// lost is found by the active query; an unpaid order expires, freeing its
// unit, and its attempt is closed at WeChat Pay; money that arrives for an
// order that expired meanwhile is refunded automatically.
func TestLateNotificationExpiryAndOrphans(t *testing.T) {
	e := newRentalEnv(t, storetest.Target{Name: "sqlite"}, false)
	ctx := context.Background()
	rod := e.stock(t, "鲤鱼竿 5.4m", rental.CategoryRod, 2500, 40000, 1)
	alice := e.customerLogin(t, "o-alice")
	e.drop.Store(true)

	// Lost notification: the customer paid, nothing arrives.
	o := e.placeOrder(t, alice, rod, 1, 1)
	a := e.startPay(t, alice, o.ID)
	e.customerPays(t, a)
	time.Sleep(50 * time.Millisecond)
	if err := e.rent.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.order(t, alice, o.ID).State; st != rental.StateAwaitingPayment {
		t.Fatalf("queried too early: %s", st)
	}
	// The mini-program's "did it go through?" asks WeChat Pay at once.
	var checked orderAnswer
	if st := e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/pay/check", o.ID), alice, nil, &checked); st != 200 || checked.Order.State != rental.StatePaid {
		t.Fatalf("pay check: %d %+v", st, checked.Order)
	}
	e.drop.Store(false)
	e.api(t, "POST", fmt.Sprintf("/api/v1/staff/orders/%d/cancel", o.ID), e.staff, map[string]string{"reason": "渔具故障 (gear broke)"}, nil)
	eventually(t, "the cancellation refund", func() bool {
		e.rent.ProcessNotifications(ctx) //nolint:errcheck
		v := e.order(t, alice, o.ID)
		return v.State == rental.StateCancelled && v.Refunded == o.Total
	})

	// Without the pay check, the sync finds it once the attempt is late.
	e.drop.Store(true)
	o2 := e.placeOrder(t, alice, rod, 1, 1)
	e.customerPays(t, e.startPay(t, alice, o2.ID))
	e.sim.Advance(3 * time.Minute)
	if err := e.rent.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.order(t, alice, o2.ID).State; st != rental.StatePaid {
		t.Fatalf("late notification not made up by the query: %s", st)
	}
	e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/cancel", o2.ID), alice, nil, nil)

	// Expiry: an attempt never paid is closed at WeChat Pay, the unit freed.
	o3 := e.placeOrder(t, alice, rod, 1, 1)
	a3 := e.startPay(t, alice, o3.ID)
	e.sim.Advance(16 * time.Minute)
	if err := e.rent.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	v3 := e.order(t, alice, o3.ID)
	if v3.State != rental.StateExpired || v3.Payments[0].State != rental.PaymentClosed {
		t.Fatalf("expired order: %+v", v3)
	}
	for _, pv := range e.pay.Orders() {
		if pv.OutTradeNo == a3.Payment.OutTradeNo && pv.TradeState != "CLOSED" {
			t.Errorf("attempt at WeChat Pay is %s, want CLOSED", pv.TradeState)
		}
	}
	e.placeOrder(t, alice, rod, 1, 1) // the unit is free again

	// Orphan: paid in the pay sheet, but the order expired before anyone
	// heard of it. The money goes back on its own and is recorded.
	bob := e.customerLogin(t, "o-bob")
	rod2 := e.stock(t, "矶钓竿 5.3m", rental.CategoryRod, 3500, 60000, 1)
	o4 := e.placeOrder(t, bob, rod2, 1, 1)
	a4 := e.startPay(t, bob, o4.ID)
	e.customerPays(t, a4)
	e.sim.Advance(16 * time.Minute)
	if err := e.rent.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e.drop.Store(false)
	eventually(t, "the orphaned payment's refund", func() bool {
		e.rent.ProcessNotifications(ctx) //nolint:errcheck
		v := e.order(t, bob, o4.ID)
		return v.State == rental.StateExpired && v.Paid == o4.Total && v.Refunded == o4.Total
	})
	var anomalies struct{ Anomalies []store.PayAnomaly }
	e.api(t, "GET", "/api/v1/owner/payments/anomalies", e.owner, nil, &anomalies)
	if len(anomalies.Anomalies) != 1 || anomalies.Anomalies[0].Kind != store.AnomalyOrphanedPayment {
		t.Errorf("anomalies: %+v", anomalies.Anomalies)
	}
}

// TestRentalWebhookRetriesAndDeadLetters: a failing receiver is retried
// with backoff; one that refuses for good lands in the owner's dead-letter
// list, and replaying it delivers it.
func TestRentalWebhookRetriesAndDeadLetters(t *testing.T) {
	e := newRentalEnv(t, storetest.Target{Name: "sqlite"}, false)
	rod := e.stock(t, "折叠钓椅", rental.CategoryChair, 800, 10000, 2)
	alice := e.customerLogin(t, "o-alice")
	e.hook.fail.Store(2)
	o := e.placeOrder(t, alice, rod, 1, 1)
	eventually(t, "the created event after two failures", func() bool { return len(e.hook.types(o.ID)) == 1 })

	e.hook.refuse.Store(true)
	e.api(t, "POST", fmt.Sprintf("/api/v1/orders/%d/cancel", o.ID), alice, nil, nil)
	var dead struct {
		Dead []store.OutboxItem `json:"dead"`
	}
	eventually(t, "the refused event in the dead-letter list", func() bool {
		e.api(t, "GET", "/api/v1/owner/outbox/dead?kind="+store.KindRentalWebhook, e.owner, nil, &dead)
		return len(dead.Dead) == 1
	})
	if !strings.Contains(dead.Dead[0].LastError, "400") {
		t.Errorf("dead letter: %+v", dead.Dead[0])
	}
	e.hook.refuse.Store(false)
	if st := e.api(t, "POST", fmt.Sprintf("/api/v1/owner/outbox/%d/replay", dead.Dead[0].ID), e.owner, nil, nil); st != 200 {
		t.Fatalf("replay: %d", st)
	}
	eventually(t, "the replayed event", func() bool { return len(e.hook.types(o.ID)) == 2 })
	if got := e.hook.types(o.ID); got[1] != "order.cancelled" {
		t.Errorf("events: %v", got)
	}
	if st := e.api(t, "POST", "/api/v1/owner/outbox/999999/replay", e.owner, nil, nil); st != 404 {
		t.Errorf("replaying nothing: %d", st)
	}
}

// TestCatalogOwnerAndDepositWaiver: the owner's catalog and settings; a
// tier the owner waives rents without a deposit; hidden items are gone for
// customers.
func TestCatalogOwnerAndDepositWaiver(t *testing.T) {
	e := newRentalEnv(t, storetest.Target{Name: "sqlite"}, false)
	umbrella := e.stock(t, "钓鱼伞 2.2m", rental.CategoryUmbrella, 1000, 15000, 1)
	alice := e.customerLogin(t, "o-alice")
	from := tomorrow(e)
	basket := map[string]any{"lines": []map[string]any{{"item_id": umbrella, "qty": 1}}, "from": from.String(), "to": from.AddDays(3).String()}
	var q struct {
		Quote     orderView `json:"quote"`
		Available bool      `json:"available"`
	}
	if st := e.api(t, "POST", "/api/v1/orders/quote", alice, basket, &q); st != 200 || q.Quote.Deposit != 15000 || q.Quote.Rent != 3000 || !q.Available {
		t.Fatalf("quote: %d %+v", st, q)
	}
	var set struct{ Settings settingsView }
	if st := e.api(t, "PUT", "/api/v1/owner/settings", e.owner, map[string]any{"deposit_waived": []string{"guest"}, "grace_period_minutes": 60,
		"hours": rental.EveryDay(6*60, 18*60)}, &set); st != 200 || len(set.Settings.DepositWaived) != 1 || set.Settings.GracePeriodMinutes != 60 || set.Settings.PaymentTimeoutMinutes != 15 {
		t.Fatalf("settings: %d %+v", st, set)
	}
	if st := e.api(t, "PUT", "/api/v1/owner/settings", e.owner, map[string]any{"payment_timeout_minutes": 0}, nil); st != 400 {
		t.Errorf("bad settings accepted: %d", st)
	}
	e.api(t, "POST", "/api/v1/orders/quote", alice, basket, &q)
	if !q.Quote.DepositWaived || q.Quote.Deposit != 0 || q.Quote.Total != 3000 {
		t.Errorf("waived quote: %+v", q.Quote)
	}

	var item struct{ Item itemView }
	if st := e.api(t, "PUT", fmt.Sprintf("/api/v1/owner/items/%d", umbrella), e.owner, map[string]any{"price_per_day": 1200, "tags": []string{"防晒"}}, &item); st != 200 ||
		item.Item.PricePerDay != 1200 || item.Item.Name != "钓鱼伞 2.2m" || len(item.Item.Tags) != 1 {
		t.Fatalf("update item: %d %+v", st, item)
	}
	var units struct{ Units []unitView }
	e.api(t, "GET", fmt.Sprintf("/api/v1/owner/items/%d/units", umbrella), e.owner, nil, &units)
	if st := e.api(t, "PUT", fmt.Sprintf("/api/v1/owner/units/%d", units.Units[0].ID), e.owner, map[string]any{"status": "maintenance"}, nil); st != 200 {
		t.Fatalf("unit to maintenance: %d", st)
	}
	var conflict orderAnswer
	if st := e.api(t, "POST", "/api/v1/orders", alice, basket, &conflict); st != 409 {
		t.Errorf("ordering a unit in maintenance: %d %+v", st, conflict.Error)
	}
	e.api(t, "DELETE", fmt.Sprintf("/api/v1/owner/items/%d", umbrella), e.owner, nil, nil)
	if st := e.api(t, "GET", fmt.Sprintf("/api/v1/items/%d", umbrella), "", nil, nil); st != 404 {
		t.Errorf("hidden item visible: %d", st)
	}
	var owned struct{ Items []itemView }
	e.api(t, "GET", "/api/v1/owner/items", e.owner, nil, &owned)
	if len(owned.Items) != 1 || owned.Items[0].Active {
		t.Errorf("owner list: %+v", owned.Items)
	}
	if st := e.api(t, "GET", "/api/v1/items?category=boat", "", nil, nil); st != 400 {
		t.Errorf("unknown category: %d", st)
	}
}

// TestRentalRoutesAreRoleChecked makes sure the rental routes are in the
// table the role walk (TestEveryRouteRefusesAnonymousAndWrongRole) reads.
func TestRentalRoutesAreRoleChecked(t *testing.T) {
	e := newIdentityEnv(t)
	for _, r := range []string{"GET /api/v1/items", "POST /api/v1/orders", "POST /api/v1/orders/:id/pay", "POST /api/v1/staff/orders/:id/return",
		"GET /api/v1/orders/:id/evidence", "PUT /api/v1/owner/settings", "POST /api/v1/owner/outbox/:id/replay", "GET /api/v1/owner/outbox/dead"} {
		if _, ok := e.srv.roles[r]; !ok {
			t.Errorf("%s is not registered through Server.api", r)
		}
	}
}
