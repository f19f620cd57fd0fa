package wxsim

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/miniprogram/business"
	miniConfig "github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/miniprogram/message"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"
	"github.com/silenceper/wechat/v2/util"
	workConfig "github.com/silenceper/wechat/v2/work/config"
	"github.com/silenceper/wechat/v2/work/kf"
	"github.com/silenceper/wechat/v2/work/kf/sendmsg"
	workMessage "github.com/silenceper/wechat/v2/work/message"
)

// rewrite sends requests for the real hosts to the simulator, keeping path
// and query, as a gateway under test would.
type rewrite struct {
	sim *url.URL
}

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	prefix := map[string]string{"api.weixin.qq.com": PrefixWeChat, "qyapi.weixin.qq.com": PrefixWeCom}[r.URL.Host]
	if prefix == "" {
		return nil, errors.New("test transport: unexpected host " + r.URL.Host)
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rw.sim.Scheme, rw.sim.Host
	r.URL.Path = prefix + r.URL.Path
	r.Host = ""
	return http.DefaultTransport.RoundTrip(r)
}

// useSimulatorForSDK points silenceper's package-global HTTP client at s.
// Tests using it must not run in parallel.
func useSimulatorForSDK(t *testing.T, wc *wechat.Wechat, s *Simulator) {
	t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	prev := util.DefaultHTTPClient
	wc.SetHTTPClient(&http.Client{Transport: rewrite{sim: u}})
	t.Cleanup(func() { util.DefaultHTTPClient = prev })
}

func TestSilenceperMiniProgram(t *testing.T) {
	s := newSim(t, nil)
	wc := wechat.NewWechat()
	useSimulatorForSDK(t, wc, s)
	for _, stable := range []bool{false, true} {
		openID := "oSDK_default"
		if stable {
			openID = "oSDK_stable"
		}
		mp := wc.GetMiniProgram(&miniConfig.Config{AppID: s.cfg.AppID, AppSecret: s.cfg.AppSecret, Cache: cache.NewMemory(), UseStableAK: stable})

		sess, err := mp.GetAuth().Code2Session(s.Login(openID))
		if err != nil || sess.OpenID != openID || sess.SessionKey == "" {
			t.Fatalf("Code2Session: %v %+v", err, sess)
		}
		code, _ := s.PhoneCode(openID, "13912345678")
		phone, err := mp.GetBusiness().GetPhoneNumber(&business.GetPhoneNumberRequest{Code: code})
		if err != nil || phone.PhoneNumber != "13912345678" || phone.Watermark.AppID != s.cfg.AppID {
			t.Fatalf("GetPhoneNumber: %v %+v", err, phone)
		}

		cs := mp.GetCustomerMessage()
		err = cs.Send(message.NewCustomerTextMessage(openID, "您好"))
		var ce *util.CommonError
		if !errors.As(err, &ce) || ce.ErrCode != errReplyTimeLimit {
			t.Fatalf("send outside the window: %v, want 45015 as *util.CommonError", err)
		}
		if _, err := s.CustomerSends(context.Background(), openID, TextMessage("有人吗")); err != nil {
			t.Fatal(err)
		}
		if err := cs.Send(message.NewCustomerTextMessage(openID, "在的")); err != nil {
			t.Fatalf("send in window: %v", err)
		}

		_ = s.GrantSubscribe(openID, DemoTemplateDepositRefund, 1)
		msgID, err := mp.GetSubscribe().SendGetMsgID(&subscribe.Message{
			ToUser: openID, TemplateID: DemoTemplateDepositRefund, Page: "pages/order/detail?id=9",
			Data: map[string]*subscribe.DataItem{
				"amount1": {Value: "¥200.00"}, "character_string2": {Value: 20260608001},
				"time3": {Value: "2026-06-08 12:00"}, "thing4": {Value: "押金已原路退回"},
			},
		})
		if err != nil || msgID == 0 {
			t.Fatalf("subscribe: %v %d", err, msgID)
		}
	}
}

func TestSilenceperWork(t *testing.T) {
	s := newSim(t, nil)
	wc := wechat.NewWechat()
	useSimulatorForSDK(t, wc, s)
	work := wc.GetWork(&workConfig.Config{CorpID: s.cfg.CorpID, CorpSecret: s.cfg.CorpSecret, AgentID: "1000002", Cache: cache.NewMemory()})

	res, err := work.GetMessage().SendText(workMessage.SendTextRequest{
		SendRequestCommon: &workMessage.SendRequestCommon{ToUser: "laowang|ghost", AgentID: "1000002"},
		Text:              workMessage.TextField{Content: "客户小陈：鱼线断了"},
	})
	if err != nil || res.InvalidUser != "ghost" || res.MsgID == "" {
		t.Fatalf("SendText: %v %+v", err, res)
	}
	up, err := work.GetMaterial().UploadTempFileFromReader("rod.png", "image", bytes.NewReader(placeholder("image")))
	if err != nil || up.MediaID == "" || up.CreateAt == "" {
		t.Fatalf("UploadTempFileFromReader: %v %+v", err, up)
	}
	data, err := work.GetMaterial().GetTempFile(up.MediaID)
	if err != nil || !bytes.Equal(data, placeholder("image")) {
		t.Fatalf("GetTempFile: %v, %d bytes", err, len(data))
	}
	if _, err := work.GetMessage().SendImage(workMessage.SendImageRequest{
		SendRequestCommon: &workMessage.SendRequestCommon{ToUser: "laowang", AgentID: "1000002"},
		Image:             workMessage.ImageField{MediaID: up.MediaID},
	}); err != nil {
		t.Fatalf("SendImage: %v", err)
	}
	code, _ := s.OAuthCode("laowang")
	info, err := work.GetOauth().GetUserInfo(code)
	if err != nil || info.UserID != "laowang" {
		t.Fatalf("GetUserInfo: %v %+v", err, info)
	}
	_, err = work.GetOauth().GetUserInfo(code)
	if err == nil || !strings.Contains(err.Error(), "40029") {
		t.Errorf("reused OAuth code: %v", err)
	}
	if got := len(s.StaffInbox("laowang")); got != 2 {
		t.Errorf("laowang received %d messages, want 2", got)
	}
}

func TestSilenceperKF(t *testing.T) {
	s := newSim(t, nil)
	wc := wechat.NewWechat()
	useSimulatorForSDK(t, wc, s)
	client, err := wc.GetWork(&workConfig.Config{CorpID: s.cfg.CorpID, CorpSecret: s.cfg.CorpSecret, AgentID: "kf", Cache: cache.NewMemory()}).GetKF()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.KFCustomerSends(context.Background(), DemoOpenKfID, "wmSDK", TextMessage("SDK 你好")); err != nil {
		t.Fatal(err)
	}
	page, err := client.SyncMsg(kf.SyncMsgOptions{OpenKfID: DemoOpenKfID})
	if err != nil || len(page.MsgList) != 1 || page.MsgList[0].ExternalUserID != "wmSDK" || page.MsgList[0].Origin != 3 {
		t.Fatalf("SyncMsg: %v %+v", err, page)
	}
	msg := sendmsg.Text{Message: sendmsg.Message{ToUser: "wmSDK", OpenKFID: DemoOpenKfID}, MsgType: "text"}
	msg.Text.Content = "您好，请问租哪款？"
	if res, err := client.SendMsg(msg); err != nil || res.MsgID == "" {
		t.Fatalf("SendMsg: %v %+v", err, res)
	}
	if _, err := client.ServiceStateTrans(kf.ServiceStateTransOptions{OpenKFID: DemoOpenKfID, ExternalUserID: "wmSDK", ServiceState: 3, ServicerUserID: "xiaoli"}); err != nil {
		t.Fatalf("ServiceStateTrans: %v", err)
	}
	st, err := client.ServiceStateGet(kf.ServiceStateGetOptions{OpenKFID: DemoOpenKfID, ExternalUserID: "wmSDK"})
	// The SDK reads "service_userid"; the server sends "servicer_userid".
	if err != nil || st.ServiceState != 3 || st.ServiceUserID != "" {
		t.Fatalf("ServiceStateGet: %v %+v", err, st)
	}
}
