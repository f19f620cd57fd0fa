// Package wxsim is a local simulator of api.weixin.qq.com (one mini-program)
// and qyapi.weixin.qq.com (one corp with a self-built app and 微信客服
// accounts), with the people on the other side: customers in WeChat and
// staff in WeCom. The WeChat Pay simulator (sub-package paysim) can be
// mounted under /pay.
//
// It is a peer, not a mock: it speaks the real wire formats over HTTP,
// signs and encrypts the callbacks it sends (WXBizMsgCrypt via silenceper's
// util, never tacklegate's own code), expires and revokes access tokens,
// enforces single-use codes, the 48-hour / 5-message reply windows, the
// subscribe-message consent counter, media lifetimes, per-member limits and
// quotas, and can inject faults (latency, 5xx, errcode -1, early token
// expiry, lost callbacks) reproducibly from a seed. Every TTL reads the
// simulator's Clock, so tests Advance time instead of sleeping.
//
// One listener serves every host under a path prefix:
//
//	/wechat/…  api.weixin.qq.com   (GET /wechat/cgi-bin/token?…)
//	/wecom/…   qyapi.weixin.qq.com (GET /wecom/cgi-bin/gettoken?…)
//	/pay/…     api.mch.weixin.qq.com, once MountPay is called
//	/sim/api/… the control API (JSON) for tests, the CLI and the page
//	/sim       a page showing a customer's WeChat chat and a staff member's
//	           WeCom chat side by side
//
// Like the real servers, every API error is HTTP 200 with
// {"errcode":N,"errmsg":"…"}; paths the simulator does not know are 404.
//
// Typical test use:
//
//	sim, _ := wxsim.Start(wxsim.DefaultConfig(), logger)
//	defer sim.Close()
//	sim.SetPushURL(gatewayURL + "/callbacks/wechat")
//	code := sim.Login(wxsim.DemoCustomerOpenID)        // wx.login
//	sim.CustomerSends(ctx, openid, wxsim.TextMessage("在吗")) // push to the gateway
//	sim.Delivered(openid)                              // what the shop sent back
//	sim.Advance(48 * time.Hour)                         // window closes: 45015
package wxsim
