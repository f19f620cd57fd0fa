// Package paysim simulates the WeChat Pay API v3 server (api.mch.weixin.qq.com)
// for one merchant: JSAPI prepay, order query and close, refunds, and the
// signed, encrypted payment and refund notifications with WeChat Pay's retry
// schedule. It is a peer, not a mock: it verifies the merchant's request
// signatures, signs every answer, enforces the documented business rules and
// error codes, and speaks only over HTTP.
//
// It is written independently of adapters/wechatpay — it shares no code with
// the client, not even the signature helpers — so that a protocol bug on one
// side cannot hide behind the same bug on the other. Tests may (and do) use the
// client against it.
//
// The handler serves the real API paths; the parent simulator mounts it under
// a prefix with http.StripPrefix. A merchant signs the path as it is on the
// real host, and the handler verifies the stripped path, so the two agree.
//
//	POST /v3/pay/transactions/jsapi                        prepay
//	GET  /v3/pay/transactions/out-trade-no/{no}?mchid=     query
//	GET  /v3/pay/transactions/id/{transaction_id}?mchid=   query (paid orders)
//	POST /v3/pay/transactions/out-trade-no/{no}/close      close → 204
//	POST /v3/refund/domestic/refunds                       refund
//	GET  /v3/refund/domestic/refunds/{out_refund_no}       refund query
//	GET  /v3/bill/tradebill?bill_date=&bill_type=          trade bill → download_url + SHA1
//	GET  /v3/billdownload/file?token=                      the bill file (signed request, unsigned file)
//
// The trade bill (bills.go) lists a day's payments and refunds in WeChat
// Pay's backquoted CSV with its summary; what goes on which day is the
// simulator's documented choice, marked there.
//
// Rules enforced (docs/WECHAT-PROTOCOLS.md §5): S15 merchant Authorization
// (format in any key order, mchid, serial_no, ±5 min, nonce reuse, RSA) → 401
// SIGN_ERROR; S16 every answer signed, optional WECHATPAY/SIGNTEST/ probes;
// S17 field validation → 400 PARAM_ERROR with detail, appid/mchid → 400
// APPID_MCHID_NOT_MATCH, same parameters → same prepay_id for 2 h, changed →
// 403 OUT_TRADE_NO_USED, time_expire closes; S18 NOTPAY → SUCCESS → REFUND
// and NOTPAY → CLOSED; S19 AEAD_AES_256_GCM notifications retried on the
// 15 s … 6 h schedule until 200/204 within 5 s, duplicates possible; S20
// refunds idempotent by out_refund_no, total must match, Σ ≤ total, ≤ 50 per
// order, within a year, PROCESSING → SUCCESS with REFUND.SUCCESS, 403
// NOT_ENOUGH when the balance is short; S21 all of it on Config.Now.
//
// Under /control/ it serves the outside world as JSON, unsigned and
// unauthenticated: POST pay, abandon, refunds/complete, refunds/abnormal,
// notifications/redeliver, balance; GET orders, notifications, platform-key.
//
// Codes marked [unconfirmed] in the protocol notes are marked where they are
// used; the simulator picks the documented best guess.
package paysim
