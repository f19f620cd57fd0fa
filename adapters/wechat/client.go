package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/miniprogram/auth"
	"github.com/silenceper/wechat/v2/miniprogram/business"
	mpconfig "github.com/silenceper/wechat/v2/miniprogram/config"
	mpctx "github.com/silenceper/wechat/v2/miniprogram/context"
	"github.com/silenceper/wechat/v2/miniprogram/message"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"

	"github.com/tacklegate/tacklegate/adapters/wechat/apibase"
	"github.com/tacklegate/tacklegate/adapters/wechat/token"
	"github.com/tacklegate/tacklegate/rental"
)

// DefaultAPIBase is the production mini-program API host.
const DefaultAPIBase = apibase.DefaultWeChatBase

// APIError is the error of a failed WeChat or WeCom call; the clients'
// errors are *rental.Error values wrapping it. Use errors.As to reach it and
// its Retryable, IsWindowClosed, IsQuotaExceeded and IsTokenInvalid helpers.
type APIError = apibase.Error

// MaxImageBytes is the largest image UploadImage sends (temporary media).
const MaxImageBytes = 10 << 20

// Config is what New needs. AppID and AppSecret are required.
type Config struct {
	AppID     string
	AppSecret string
	// APIBase replaces https://api.weixin.qq.com (TACKLEGATE_WECHAT_API_BASE),
	// e.g. the simulator's http://127.0.0.1:PORT/wechat. Empty: production.
	// One base per process: see package apibase.
	APIBase string
	// TokenStore shares the access token between instances (Redis). Nil:
	// this process only.
	TokenStore token.Store
	Logger     *slog.Logger
	// Now is the clock the token lifetime is measured on; tests pass the
	// simulator's. Default time.Now.
	Now func() time.Time
	// SubscribeState is miniprogram_state of subscribe messages: "developer"
	// or "trial" opens that build of the mini-program; empty is "formal".
	SubscribeState string
}

// Client calls the mini-program APIs (WECHAT-PROTOCOLS.md §1) on
// silenceper/wechat, with the access token of token.Source. It is safe for
// concurrent use; build one per app and process.
type Client struct {
	appID          string
	secret         string
	sdk            *mpconfig.Config
	tokens         *token.Source
	log            *slog.Logger
	subscribeState string
	unregister     func()
}

// New builds a Client and points the process's WeChat requests at
// cfg.APIBase. Close releases the base.
func New(cfg Config) (*Client, error) {
	const op = "wechat.New"
	if cfg.AppID == "" || cfg.AppSecret == "" {
		return nil, rental.Errorf(op, rental.KindInvalid, "mini-program AppID and AppSecret are required")
	}
	switch cfg.SubscribeState {
	case "", "formal", "trial", "developer":
	default:
		return nil, rental.Errorf(op, rental.KindInvalid, "SubscribeState %q: want formal, trial or developer", cfg.SubscribeState)
	}
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	apibase.Install()
	unregister, err := apibase.Register(apibase.WeChatHost, base)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECHAT_API_BASE cannot be used", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "wechat")
	c := &Client{
		appID:          cfg.AppID,
		secret:         cfg.AppSecret,
		sdk:            &mpconfig.Config{AppID: cfg.AppID, AppSecret: cfg.AppSecret},
		log:            logger,
		subscribeState: cfg.SubscribeState,
		unregister:     unregister,
	}
	c.tokens, err = token.New(token.Config{
		Key:     "wechat:" + cfg.AppID,
		Fetcher: token.FetchFunc(c.fetchToken),
		Store:   cfg.TokenStore,
		Now:     cfg.Now,
		Logger:  logger,
	})
	if err != nil {
		unregister()
		return nil, rental.Wrap(op, rental.KindInternal, "", err)
	}
	return c, nil
}

// Close releases the API base registration. The Client must not be used
// afterwards.
func (c *Client) Close() error {
	c.unregister()
	return nil
}

// AppID returns the mini-program's appid.
func (c *Client) AppID() string { return c.appID }

// Tokens returns the client's token source.
func (c *Client) Tokens() *token.Source { return c.tokens }

// fetchToken uses POST /cgi-bin/stable_token rather than GET /cgi-bin/token:
// in normal mode it returns the SAME token while that one is valid, so
// instances (or a redeploy's old and new processes, or a CLI next to the
// server) that fetch independently — Redis down or not configured — do not
// invalidate each other's token, which /cgi-bin/token does five minutes after
// every call. It also keeps the secret out of the URL, and its quota is far
// larger. force_refresh is never sent: it would revoke the token for every
// instance at once and is limited to 20 a day.
func (c *Client) fetchToken(ctx context.Context) (token.Token, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	in := struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", c.appID, c.secret, false}
	err := apibase.PostJSON(ctx, "wechat.FetchToken", apibase.URL(apibase.WeChatHost, "/cgi-bin/stable_token", nil), in, &out)
	if err != nil {
		markTokenFetch(err)
		return token.Token{}, err
	}
	return token.Token{Value: out.AccessToken, ExpiresIn: time.Duration(out.ExpiresIn) * time.Second}, nil
}

func markTokenFetch(err error) {
	var e *APIError
	if errors.As(err, &e) {
		e.TokenFetch = true
	}
}

// call runs a silenceper call with the current token and the caller's
// context (apibase.Bind), refreshing and retrying once if the token is
// refused, and returns the outcome as a rental.Error around an *APIError.
func (c *Client) call(ctx context.Context, op string, fn func(sdk *mpctx.Context) error) error {
	err := c.tokens.Use(ctx, func(ctx context.Context, tok string) error {
		bound := apibase.Bind(ctx)
		defer bound.Release()
		sdk := &mpctx.Context{Config: c.sdk, AccessTokenContextHandle: apibase.FixedToken(bound.Token(tok))}
		return apibase.FromSDK(op, fn(sdk))
	})
	return c.done(op, err)
}

// raw is call for the hand-written requests.
func (c *Client) raw(ctx context.Context, op string, fn func(ctx context.Context, tok string) error) error {
	return c.done(op, c.tokens.Use(ctx, fn))
}

func (c *Client) done(op string, err error) error {
	if err == nil {
		return nil
	}
	err = apibase.Wrap(op, err)
	c.log.Debug("api call failed", "op", op, "err", err)
	return err
}

// Session is the outcome of a login. SessionKey decrypts data the
// mini-program obtained with wx.getUserInfo-era APIs; it must never leave the
// server, and the String and LogValue forms hide it.
type Session struct {
	OpenID     string
	UnionID    string // empty unless the app is bound to an Open Platform account
	SessionKey string
}

func (s Session) String() string {
	return fmt.Sprintf("{OpenID:%s UnionID:%s SessionKey:[hidden]}", s.OpenID, s.UnionID)
}

// GoString hides the key from %#v too.
func (s Session) GoString() string { return "wechat.Session" + s.String() }

// LogValue hides the key from slog.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("openid", s.OpenID), slog.String("unionid", s.UnionID))
}

// Code2Session exchanges a wx.login code for the user's openid (GET
// /sns/jscode2session). A code works once and for five minutes; a refused
// code is a rental.KindUnauthorized error: the mini-program logs in again.
func (c *Client) Code2Session(ctx context.Context, jsCode string) (Session, error) {
	const op = "wechat.Code2Session"
	if jsCode == "" {
		return Session{}, rental.Errorf(op, rental.KindInvalid, "缺少登录凭证 code")
	}
	res, err := auth.NewAuth(&mpctx.Context{Config: c.sdk}).Code2SessionContext(ctx, jsCode)
	if err != nil {
		if res.ErrCode != 0 { // silenceper returns a plain error; the struct has the errcode
			err = &APIError{Op: op, Code: int(res.ErrCode), Msg: res.ErrMsg}
		}
		return Session{}, c.done(op, loginError(op, err))
	}
	if res.OpenID == "" {
		return Session{}, c.done(op, &APIError{Op: op, Err: errors.New("answer has no openid")})
	}
	return Session{OpenID: res.OpenID, UnionID: res.UnionID, SessionKey: res.SessionKey}, nil
}

// loginError makes a refused login code KindUnauthorized.
func loginError(op string, err error) error {
	err = apibase.FromSDK(op, err)
	var e *APIError
	if errors.As(err, &e) && (e.Code == apibase.CodeInvalidCode || e.Code == apibase.CodeCodeUsed) {
		return rental.Wrap(op, rental.KindUnauthorized, "登录凭证无效或已使用，请重新登录", err)
	}
	return err
}

// PhoneInfo is the phone number a user agreed to share. Its String and
// LogValue forms mask the number.
type PhoneInfo struct {
	PhoneNumber     string // with the country code for numbers outside China
	PurePhoneNumber string
	CountryCode     string
}

func (p PhoneInfo) String() string {
	return fmt.Sprintf("{+%s %s}", p.CountryCode, MaskPhone(p.PurePhoneNumber))
}

// LogValue masks the number.
func (p PhoneInfo) LogValue() slog.Value {
	return slog.GroupValue(slog.String("country", p.CountryCode), slog.String("phone", MaskPhone(p.PurePhoneNumber)))
}

// MaskPhone keeps the first three and last four digits of a mobile number.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return strings.Repeat("*", len(p))
	}
	return p[:3] + strings.Repeat("*", len(p)-7) + p[len(p)-4:]
}

// PhoneNumber exchanges a getPhoneNumber button code for the number (POST
// /wxa/business/getuserphonenumber), and checks that the answer was made for
// this mini-program (watermark.appid).
func (c *Client) PhoneNumber(ctx context.Context, code string) (PhoneInfo, error) {
	const op = "wechat.PhoneNumber"
	if code == "" {
		return PhoneInfo{}, rental.Errorf(op, rental.KindInvalid, "缺少手机号授权 code")
	}
	var info business.PhoneInfo
	err := c.call(ctx, op, func(sdk *mpctx.Context) error {
		var err error
		info, err = business.NewBusiness(sdk).GetPhoneNumberWithContext(ctx, &business.GetPhoneNumberRequest{Code: code})
		return err
	})
	if err != nil {
		return PhoneInfo{}, err
	}
	if info.Watermark.AppID != c.appID {
		return PhoneInfo{}, c.done(op, &APIError{Op: op, Err: fmt.Errorf("watermark appid %q is not ours (%s)", info.Watermark.AppID, c.appID)})
	}
	if info.PurePhoneNumber == "" {
		return PhoneInfo{}, c.done(op, &APIError{Op: op, Err: errors.New("answer has no phone number")})
	}
	return PhoneInfo{PhoneNumber: info.PhoneNumber, PurePhoneNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}, nil
}

// Link is a customer-service link card.
type Link struct {
	Title       string
	Description string
	URL         string
	ThumbURL    string
}

// Page is a customer-service mini-program page card; ThumbMediaID comes from
// UploadImage.
type Page struct {
	Title        string
	PagePath     string
	ThumbMediaID string
}

// SendCustomerText sends a customer-service text (POST
// /cgi-bin/message/custom/send). Outside the 48-hour window the error's
// APIError has IsWindowClosed; past five replies, IsQuotaExceeded.
func (c *Client) SendCustomerText(ctx context.Context, openID, text string) error {
	if text == "" {
		return rental.Errorf("wechat.SendCustomerText", rental.KindInvalid, "消息内容为空")
	}
	return c.sendCustomer(ctx, "wechat.SendCustomerText", message.NewCustomerTextMessage(openID, text))
}

// SendCustomerImage sends an image uploaded with UploadImage.
func (c *Client) SendCustomerImage(ctx context.Context, openID, mediaID string) error {
	return c.sendCustomer(ctx, "wechat.SendCustomerImage", message.NewCustomerImgMessage(openID, mediaID))
}

// SendCustomerLink sends a link card.
func (c *Client) SendCustomerLink(ctx context.Context, openID string, l Link) error {
	return c.sendCustomer(ctx, "wechat.SendCustomerLink", message.NewCustomerLinkMessage(openID, l.Title, l.Description, l.URL, l.ThumbURL))
}

// SendCustomerMiniProgramPage sends a card opening a page of this
// mini-program.
func (c *Client) SendCustomerMiniProgramPage(ctx context.Context, openID string, p Page) error {
	return c.sendCustomer(ctx, "wechat.SendCustomerMiniProgramPage", message.NewCustomerMiniprogrampageMessage(openID, p.Title, p.PagePath, p.ThumbMediaID))
}

func (c *Client) sendCustomer(ctx context.Context, op string, msg *message.CustomerMessage) error {
	if msg.ToUser == "" {
		return rental.Errorf(op, rental.KindInvalid, "缺少接收人 openid")
	}
	return c.call(ctx, op, func(sdk *mpctx.Context) error {
		return message.NewCustomerMessageManager(sdk).Send(msg)
	})
}

// SendSubscribe sends a subscribe message (POST
// /cgi-bin/message/subscribe/send) and returns its msgid. data maps keyword
// names ("thing1", "time2", …) to values. Without a consent left the
// APIError has IsQuotaExceeded (43101).
func (c *Client) SendSubscribe(ctx context.Context, openID, templateID, page string, data map[string]string) (int64, error) {
	const op = "wechat.SendSubscribe"
	if openID == "" || templateID == "" || len(data) == 0 {
		return 0, rental.Errorf(op, rental.KindInvalid, "订阅消息缺少接收人、模板或内容")
	}
	msg := &subscribe.Message{
		ToUser: openID, TemplateID: templateID, Page: page,
		Data:             make(map[string]*subscribe.DataItem, len(data)),
		MiniprogramState: c.subscribeState, Lang: "zh_CN",
	}
	for k, v := range data {
		msg.Data[k] = &subscribe.DataItem{Value: v}
	}
	var msgID int64
	err := c.call(ctx, op, func(sdk *mpctx.Context) error {
		var err error
		msgID, err = subscribe.NewSubscribe(sdk).SendGetMsgID(msg)
		return err
	})
	return msgID, err
}

// UploadImage uploads a temporary image (POST /cgi-bin/media/upload,
// type=image, multipart field "media"), valid three days, for
// SendCustomerImage and page thumbnails.
//
// Hand-written: silenceper's miniprogram package has no media calls, and its
// officialaccount one would fetch a second token under another cache key,
// invalidating this one (WECHAT-PROTOCOLS.md §4).
func (c *Client) UploadImage(ctx context.Context, name string, r io.Reader) (string, error) {
	const op = "wechat.UploadImage"
	// Read whole: the token retry may send the bytes twice.
	data, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	switch {
	case err != nil:
		return "", rental.Wrap(op, rental.KindInvalid, "读取图片失败", err)
	case len(data) == 0:
		return "", rental.Errorf(op, rental.KindInvalid, "图片为空")
	case len(data) > MaxImageBytes:
		return "", rental.Errorf(op, rental.KindInvalid, "图片超过 %d MB", MaxImageBytes>>20)
	}
	if name == "" {
		name = "image"
	}
	var out struct {
		MediaID string `json:"media_id"`
	}
	err = c.raw(ctx, op, func(ctx context.Context, tok string) error {
		u := apibase.URL(apibase.WeChatHost, "/cgi-bin/media/upload", url.Values{"access_token": {tok}, "type": {"image"}})
		return apibase.PostFile(ctx, op, u, "media", name, data, &out)
	})
	if err != nil {
		return "", err
	}
	if out.MediaID == "" {
		return "", c.done(op, &APIError{Op: op, Err: errors.New("answer has no media_id")})
	}
	return out.MediaID, nil
}

// GetMedia downloads temporary media (GET /cgi-bin/media/get): images
// customers sent, or what UploadImage stored. Media expire after three days;
// copy them on arrival. Hand-written for the same reason as UploadImage.
func (c *Client) GetMedia(ctx context.Context, mediaID string) ([]byte, string, error) {
	const op = "wechat.GetMedia"
	if mediaID == "" {
		return nil, "", rental.Errorf(op, rental.KindInvalid, "缺少 media_id")
	}
	var f apibase.File
	err := c.raw(ctx, op, func(ctx context.Context, tok string) error {
		var err error
		u := apibase.URL(apibase.WeChatHost, "/cgi-bin/media/get", url.Values{"access_token": {tok}, "media_id": {mediaID}})
		f, err = apibase.GetFile(ctx, op, u)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return f.Data, f.ContentType, nil
}
