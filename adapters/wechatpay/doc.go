// Package wechatpay is tacklegate's client for WeChat Pay API v3 (微信支付
// APIv3), written on the standard library because the official SDKs are not
// obtainable from the module proxy here.
//
// It covers what the rental shop needs: JSAPI / mini-program prepay, the
// wx.requestPayment parameters (paySign), order query and close, refunds and
// refund query, the payment and refund notifications, and the daily trade
// bill (交易账单: TradeBill, DownloadBill with its SHA1 check, ParseTradeBill)
// for reconciliation.
//
// The protocol rules it follows (see docs/WECHAT-PROTOCOLS.md §3):
//
//   - Every request is signed: SHA256withRSA over
//     "METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n" with the merchant API
//     private key, sent as
//     `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
//     CANONICAL_URL is the API path plus raw query as it would be on the real
//     host: a path prefix in Config.BaseURL (a simulator mounted at /pay) is
//     sent but not signed. The body that is signed is the body that is sent.
//   - Every response — including 204 and error bodies — is verified before
//     anything in it is believed: the Wechatpay-Timestamp/-Nonce/-Signature/
//     -Serial headers must be present, the serial must be the configured
//     platform key, the timestamp must be within Config.MaxSkew of now, and
//     the signature over "TIMESTAMP\nNONCE\nBODY\n" must verify. Signature
//     probes (`WECHATPAY/SIGNTEST/…`) are rejected.
//   - Notifications are verified the same way first and only then decrypted
//     (AEAD_AES_256_GCM with the APIv3 key).
//
// Errors: failures of verification wrap ErrSignature (a notification handler
// answers 401); an authentic notification that cannot be decrypted or parsed
// wraps ErrUndecryptable (answer 400); a verified non-2xx answer from WeChat
// Pay is an *APIError.
//
// Money is integer fen (分) in int64. Times are time.Time, sent as RFC 3339.
package wechatpay
