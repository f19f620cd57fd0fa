package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wecom"
	"github.com/tacklegate/tacklegate/rental"
)

// callbackBodyLimit bounds a WeChat/WeCom push: real ones are a few KiB.
const callbackBodyLimit = 64 << 10

// Callbacks configures /callbacks/wechat and /callbacks/wecom. A nil crypter
// means that channel's push is not configured.
type Callbacks struct {
	WeChat *msgcrypt.Crypter // receiver: the mini-program AppID
	WeCom  *msgcrypt.Crypter // receiver: the CorpID
	// WeComCorpID and WeComAgentID are checked against the envelope.
	WeComCorpID  string
	WeComAgentID int
	// WeComOAuthBase replaces https://open.weixin.qq.com in the staff
	// sign-in link (GET /api/v1/staff/login).
	WeComOAuthBase string
	// MaxSkew bounds the age of a callback timestamp; 0 disables the check.
	MaxSkew time.Duration
	Inbound rental.InboundStore
	Now     func() time.Time
	// Pay verifies WeChat Pay notifications; nil when WeChat Pay is off.
	Pay PayNotifications
}

// PayNotifications authenticates and decrypts WeChat Pay notifications
// (adapters/wechatpay.Client).
type PayNotifications interface {
	ParseNotification(h http.Header, body []byte) (*wechatpay.Notification, error)
}

// callbackParams are the signed query parameters of a push.
type callbackParams struct {
	signature, msgSignature, timestamp, nonce, encryptType, echostr string
}

func readParams(c *fiber.Ctx) callbackParams {
	// fiber's Query strings point into a reused buffer; these are only used
	// while the request is handled, never stored.
	return callbackParams{
		signature: c.Query("signature"), msgSignature: c.Query("msg_signature"),
		timestamp: c.Query("timestamp"), nonce: c.Query("nonce"),
		encryptType: c.Query("encrypt_type"), echostr: c.Query("echostr"),
	}
}

var (
	errNotFromWeChat = func(op, why string) error {
		return rental.Errorf(op, rental.KindUnauthorized, "callback refused: %s", why)
	}
	errMalformedCallback = func(op string, err error) error {
		return rental.Wrap(op, rental.KindInvalid, "callback body cannot be read", err)
	}
)

// checkTime refuses a missing, non-numeric or stale timestamp. A stale one
// is how a captured, correctly signed request would be replayed.
func (cb *Callbacks) checkTime(op, ts string) error {
	if ts == "" {
		return errNotFromWeChat(op, "missing timestamp")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errNotFromWeChat(op, "timestamp is not a number")
	}
	if cb.MaxSkew == 0 {
		return nil
	}
	age := cb.Now().Sub(time.Unix(sec, 0))
	if age > cb.MaxSkew || age < -cb.MaxSkew {
		return errNotFromWeChat(op, "timestamp outside the allowed skew (TACKLEGATE_CALLBACK_MAX_SKEW)")
	}
	return nil
}

// checkCrypt maps the crypto's errors to 401 (not for us) or 400 (garbled).
func checkCrypt(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, msgcrypt.ErrSignature):
		return errNotFromWeChat(op, "bad signature")
	case errors.Is(err, msgcrypt.ErrReceiver):
		return errNotFromWeChat(op, "encrypted for another receiver")
	}
	return errMalformedCallback(op, err)
}

func (s *Server) mountCallbacks(cb *Callbacks) {
	if cb.Now == nil {
		cb.Now = time.Now
	}
	seen := newReplayCache(10 * time.Minute)
	s.app.Get("/callbacks/wechat", func(c *fiber.Ctx) error { return wechatVerify(c, cb) })
	s.app.Post("/callbacks/wechat", func(c *fiber.Ctx) error { return wechatPush(c, cb, seen) })
	s.app.Get("/callbacks/wecom", func(c *fiber.Ctx) error { return wecomVerify(c, cb) })
	s.app.Post("/callbacks/wecom", func(c *fiber.Ctx) error { return wecomPush(c, cb, seen) })
	s.app.Post("/callbacks/wechatpay", func(c *fiber.Ctx) error { return payNotify(c, cb) })
}

// payNotify verifies a WeChat Pay notification (signature and timestamp,
// then AEAD decryption), stores it once by its id and answers 204. An order
// we do not know is still acknowledged: the merchant account may serve other
// apps, and a refusal would make WeChat Pay retry for a day. Matching it to
// an order happens from the stored record.
func payNotify(c *fiber.Ctx, cb *Callbacks) error {
	const op = "callbacks.payNotify"
	if cb.Pay == nil {
		return rental.Errorf(op, rental.KindNotFound, "WeChat Pay is not configured (TACKLEGATE_WECHATPAY_*)")
	}
	if len(c.Body()) > callbackBodyLimit {
		return fiber.ErrRequestEntityTooLarge
	}
	h := http.Header{}
	c.Request().Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	n, err := cb.Pay.ParseNotification(h, c.Body())
	switch {
	case errors.Is(err, wechatpay.ErrSignature):
		return errNotFromWeChat(op, "bad WeChat Pay signature or timestamp")
	case err != nil:
		return errMalformedCallback(op, err)
	}
	in := &rental.Inbound{
		Channel: rental.ChannelWeChatPay, DedupeKey: "notify:" + n.ID, Kind: n.EventType,
		SentAt: n.CreateTime, Payload: n.Plaintext,
	}
	switch {
	case n.Transaction != nil:
		in.From, in.To = n.Transaction.OutTradeNo, n.Transaction.MchID
	case n.Refund != nil:
		in.From, in.To = n.Refund.OutTradeNo, n.Refund.MchID
	}
	if err := persist(c, cb, in); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// wechatVerify answers the mini-program console's URL check: a plain
// signature over token, timestamp and nonce; echostr is echoed verbatim.
func wechatVerify(c *fiber.Ctx, cb *Callbacks) error {
	const op = "callbacks.wechatVerify"
	if cb.WeChat == nil {
		return rental.Errorf(op, rental.KindNotFound, "mini-program message push is not configured (TACKLEGATE_WECHAT_TOKEN, TACKLEGATE_WECHAT_AES_KEY)")
	}
	p := readParams(c)
	if err := cb.WeChat.Verify(p.signature, p.timestamp, p.nonce); err != nil {
		return checkCrypt(op, err)
	}
	if err := cb.checkTime(op, p.timestamp); err != nil {
		return err
	}
	if p.echostr == "" {
		return rental.Errorf(op, rental.KindInvalid, "missing echostr")
	}
	return c.SendString(p.echostr)
}

// wechatPush verifies, decrypts and stores a mini-program push, and only
// then answers "success".
func wechatPush(c *fiber.Ctx, cb *Callbacks, seen *replayCache) error {
	const op = "callbacks.wechatPush"
	if cb.WeChat == nil {
		return rental.Errorf(op, rental.KindNotFound, "mini-program message push is not configured")
	}
	p := readParams(c)
	if err := cb.WeChat.Verify(p.signature, p.timestamp, p.nonce); err != nil {
		return checkCrypt(op, err)
	}
	if err := cb.checkTime(op, p.timestamp); err != nil {
		return err
	}
	if p.encryptType != "aes" || p.msgSignature == "" {
		return rental.Errorf(op, rental.KindInvalid, "push must use safe mode (消息加密方式: 安全模式)")
	}
	if len(c.Body()) > callbackBodyLimit {
		return fiber.ErrRequestEntityTooLarge
	}
	env, err := wechat.ParseEnvelope(c.Body())
	if err != nil {
		return errMalformedCallback(op, err)
	}
	if err := cb.WeChat.Verify(p.msgSignature, p.timestamp, p.nonce, env.Encrypt); err != nil {
		return checkCrypt(op, err)
	}
	if seen.stored("wechat", p.msgSignature, p.timestamp, p.nonce) {
		return c.SendString("success") // the very same signed request again: already stored
	}
	plain, err := cb.WeChat.Decrypt(env.Encrypt)
	if err != nil {
		return checkCrypt(op, err)
	}
	msg, err := wechat.ParsePush(plain)
	if err != nil {
		return errMalformedCallback(op, err)
	}
	in := &rental.Inbound{
		Channel: rental.ChannelWeChat, DedupeKey: msg.DedupeKey(), Kind: msg.Kind(),
		From: msg.FromUserName, To: msg.ToUserName, SentAt: time.Unix(msg.CreateTime, 0), Payload: plain,
	}
	if err := persist(c, cb, in); err != nil {
		return err
	}
	seen.remember("wechat", p.msgSignature, p.timestamp, p.nonce)
	return c.SendString("success")
}

// wecomVerify answers WeCom's URL check: msg_signature over the encrypted
// echostr, which is decrypted and answered in plain text.
func wecomVerify(c *fiber.Ctx, cb *Callbacks) error {
	const op = "callbacks.wecomVerify"
	if cb.WeCom == nil {
		return rental.Errorf(op, rental.KindNotFound, "WeCom callbacks are not configured (TACKLEGATE_WECOM_TOKEN, TACKLEGATE_WECOM_AES_KEY)")
	}
	p := readParams(c)
	if p.echostr == "" {
		return rental.Errorf(op, rental.KindInvalid, "missing echostr")
	}
	if err := cb.WeCom.Verify(p.msgSignature, p.timestamp, p.nonce, p.echostr); err != nil {
		return checkCrypt(op, err)
	}
	if err := cb.checkTime(op, p.timestamp); err != nil {
		return err
	}
	plain, err := cb.WeCom.Decrypt(p.echostr)
	if err != nil {
		return checkCrypt(op, err)
	}
	return c.Send(plain)
}

// wecomPush verifies, decrypts and stores a WeCom app callback, then answers
// with an empty 200.
func wecomPush(c *fiber.Ctx, cb *Callbacks, seen *replayCache) error {
	const op = "callbacks.wecomPush"
	if cb.WeCom == nil {
		return rental.Errorf(op, rental.KindNotFound, "WeCom callbacks are not configured")
	}
	p := readParams(c)
	if p.msgSignature == "" {
		return errNotFromWeChat(op, "missing msg_signature")
	}
	if err := cb.checkTime(op, p.timestamp); err != nil {
		return err
	}
	if len(c.Body()) > callbackBodyLimit {
		return fiber.ErrRequestEntityTooLarge
	}
	env, err := wecom.ParseEnvelope(c.Body())
	if err != nil {
		return errMalformedCallback(op, err)
	}
	if err := cb.WeCom.Verify(p.msgSignature, p.timestamp, p.nonce, env.Encrypt); err != nil {
		return checkCrypt(op, err)
	}
	if env.ToUserName != cb.WeComCorpID || (env.AgentID != "" && env.AgentID != strconv.Itoa(cb.WeComAgentID)) {
		return errNotFromWeChat(op, "addressed to another corp or app")
	}
	if seen.stored("wecom", p.msgSignature, p.timestamp, p.nonce) {
		return c.Status(fiber.StatusOK).Send(nil) // WeCom wants an empty body
	}
	plain, err := cb.WeCom.Decrypt(env.Encrypt)
	if err != nil {
		return checkCrypt(op, err)
	}
	msg, err := wecom.ParseMessage(plain)
	if err != nil {
		return errMalformedCallback(op, err)
	}
	if msg.ToUserName != cb.WeComCorpID || (msg.AgentID != 0 && msg.AgentID != int64(cb.WeComAgentID)) {
		return errNotFromWeChat(op, "addressed to another corp or app")
	}
	in := &rental.Inbound{
		Channel: rental.ChannelWeCom, DedupeKey: msg.DedupeKey(), Kind: msg.Kind(),
		From: msg.FromUserName, To: msg.ToUserName, SentAt: time.Unix(msg.CreateTime, 0), Payload: plain,
	}
	if err := persist(c, cb, in); err != nil {
		return err
	}
	seen.remember("wecom", p.msgSignature, p.timestamp, p.nonce)
	return c.Status(fiber.StatusOK).Send(nil) // WeCom wants an empty body
}

// persist stores before the acknowledgement; a failure answers 503 so that
// WeChat delivers again later.
func persist(c *fiber.Ctx, cb *Callbacks, in *rental.Inbound) error {
	created, err := cb.Inbound.SaveInbound(c.UserContext(), in)
	if err != nil {
		return rental.Wrap("callbacks.store", rental.KindUnavailable, "", err)
	}
	Logger(c).Debug("callback stored", "channel", in.Channel, "kind", in.Kind, "inbound", in.ID, "duplicate", !created)
	return nil
}

// replayCache remembers signed requests already stored, so that the very
// same request arriving again (a replay within the skew window, or WeChat
// retrying after a slow answer) is answered without decrypting or touching
// the database. Only stored requests are remembered: two copies racing each
// other both reach the database, whose unique key keeps one. The cache saves
// work; the database guarantees "stored once".
type replayCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time
	next time.Time // when to sweep expired entries
}

func newReplayCache(ttl time.Duration) *replayCache {
	return &replayCache{ttl: ttl, seen: map[string]time.Time{}}
}

// stored reports whether this exact request was stored within the TTL.
func (r *replayCache) stored(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.seen[joinKey(parts)]
	return ok && time.Since(at) <= r.ttl
}

// remember records a request that was stored.
func (r *replayCache) remember(parts ...string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.After(r.next) {
		for k, at := range r.seen {
			if now.Sub(at) > r.ttl {
				delete(r.seen, k)
			}
		}
		r.next = now.Add(r.ttl / 10)
	}
	r.seen[joinKey(parts)] = now
}

func joinKey(parts []string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return string(b)
}
