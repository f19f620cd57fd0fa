package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// DemoSim lets the customer page, in the demo only, do what the customer's
// phone does in real life: wx.login inside WeChat, and confirming the
// WeChat Pay sheet. A desktop browser has neither, so these routes ask the
// simulator's control API (the same calls the /sim page and the tests
// make). The page cannot call the simulator itself: its CSP keeps it to its
// own origin, and the simulator runs on another port.
//
// These are not calls to WeChat (they go to the simulator, acting as the
// customer's phone), so they are made from the request and not through the
// outbox. The routes exist only when Rental.Sim is set, which only `demo`
// does; `serve` answers them 404.
type DemoSim struct {
	// URL is the simulator's base URL (its /sim page is URL + "/sim", its
	// WeChat Pay control API URL + "/pay/control").
	URL string
	// HTTP defaults to a client with a 10 s timeout.
	HTTP *http.Client
}

func (d *DemoSim) client() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// call posts JSON to the simulator's control API and decodes the answer;
// the simulator's own {"error":{…}} message is passed on.
func (d *DemoSim) call(ctx context.Context, path string, in, out any) error {
	const op = "demo.simulator"
	b, err := json.Marshal(in)
	if err != nil {
		return rental.Wrap(op, rental.KindInternal, "", err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(d.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return rental.Wrap(op, rental.KindInternal, "", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client().Do(req)
	if err != nil {
		return rental.Wrap(op, rental.KindUpstream, "模拟器没有响应 (the simulator did not answer)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(body, &e)
		kind := rental.KindUpstream
		if resp.StatusCode == http.StatusConflict {
			kind = rental.KindConflict
		} else if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
			kind = rental.KindInvalid
		}
		return rental.Errorf(op, kind, "模拟器拒绝了请求 (the simulator refused: %s)", e.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return rental.Wrap(op, rental.KindUpstream, "模拟器的回答无法解析 (the simulator's answer is not JSON)", err)
		}
	}
	return nil
}

func (s *Server) mountDemo(r *Rental) {
	if r.Sim == nil {
		return
	}
	h := &demoHandlers{sim: r.Sim, r: r, srv: s}
	s.api("GET", "/demo/simulator", anyone, h.info)
	s.api("POST", "/demo/wx-login", anyone, h.wxLogin)
	s.api("POST", "/demo/orders/:id/pay", customers, h.pay)
}

type demoHandlers struct {
	sim *DemoSim
	r   *Rental
	srv *Server
}

// info tells the page it runs against the simulator, and where the
// simulator's page is (SMS codes arrive there: the customer's phone).
func (h *demoHandlers) info(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"simulator": true, "page": strings.TrimRight(h.sim.URL, "/") + "/sim"})
}

// wxLogin is wx.login in the simulated WeChat: a js_code for the given
// simulated customer (the simulator's demo customer by default), which the
// page then sends to POST /auth/wechat like the mini-program would.
func (h *demoHandlers) wxLogin(c *fiber.Ctx) error {
	var in struct {
		OpenID string `json:"openid"`
	}
	if len(c.Body()) > 0 {
		if err := body(c, &in); err != nil {
			return err
		}
	}
	openid := strings.TrimSpace(in.OpenID)
	if openid == "" {
		openid = demoCustomerOpenID
	}
	if len(openid) > 64 || strings.ContainsAny(openid, "/?#% ") {
		return rental.Errorf("demo.wxLogin", rental.KindInvalid, "openid 无效 (bad openid)")
	}
	var out struct {
		JSCode string `json:"js_code"`
	}
	if err := h.sim.call(c.UserContext(), "/sim/api/customers/"+url.PathEscape(openid)+"/login", nil, &out); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"code": out.JSCode, "openid": openid})
}

// demoCustomerOpenID is wxsim.DemoCustomerOpenID, the customer the /sim
// page plays by default (not imported: the gateway does not depend on the
// simulator).
const demoCustomerOpenID = "oTKgate_demo_customer_000001"

// pay is the customer confirming the simulated pay sheet with the
// wx.requestPayment parameters POST /orders/:id/pay returned. The
// simulator checks paySign like WeChat would, marks the payment made and
// sends the signed notification to /callbacks/wechatpay: the order is paid
// by that notification (or by POST /orders/:id/pay/check), never by this
// route.
func (h *demoHandlers) pay(c *fiber.Ctx) error {
	o, _, err := (&rentalHandlers{r: h.r, srv: h.srv}).myOrderOf(c)
	if err != nil {
		return err
	}
	var in struct {
		OutTradeNo string `json:"out_trade_no"`
		TimeStamp  string `json:"timeStamp"`
		NonceStr   string `json:"nonceStr"`
		Package    string `json:"package"`
		SignType   string `json:"signType"`
		PaySign    string `json:"paySign"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	known := false
	for _, p := range o.Payments {
		known = known || (p.OutTradeNo == in.OutTradeNo && p.State == rental.PaymentPending)
	}
	if !known {
		return rental.Errorf("demo.pay", rental.KindConflict, "这笔支付不属于该订单或已结束 (no pending payment %q on this order)", in.OutTradeNo)
	}
	var out map[string]string
	if err := h.sim.call(c.UserContext(), "/pay/control/pay", in, &out); err != nil {
		return err
	}
	Logger(c).Info("demo: payment confirmed in the simulator", "order", o.ID, "out_trade_no", in.OutTradeNo)
	return c.JSON(fiber.Map{"simulator": out, "note": fmt.Sprintf("模拟器已确认支付 %s，等待微信支付通知 (the simulator paid; the notification follows)", in.OutTradeNo)})
}
