package wecom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/work/config"
	workctx "github.com/silenceper/wechat/v2/work/context"
	"github.com/silenceper/wechat/v2/work/material"
	"github.com/silenceper/wechat/v2/work/message"
	"github.com/silenceper/wechat/v2/work/oauth"

	"github.com/tacklegate/tacklegate/adapters/wechat/apibase"
	"github.com/tacklegate/tacklegate/adapters/wechat/token"
	"github.com/tacklegate/tacklegate/rental"
)

// DefaultAPIBase is the production WeCom API host.
const DefaultAPIBase = apibase.DefaultWeComBase

// APIError is the error of a failed WeCom call (the same type as
// wechat.APIError); the client's errors are *rental.Error values wrapping it.
type APIError = apibase.Error

// Temporary media types (POST /cgi-bin/media/upload?type=…).
const (
	MediaImage = "image"
	MediaVoice = "voice"
	MediaVideo = "video"
	MediaFile  = "file"
)

// mediaLimits are WeCom's size limits per type (WECHAT-PROTOCOLS.md §2.3);
// checked before uploading so an oversized file fails fast and clearly.
var mediaLimits = map[string]int{
	MediaImage: 10 << 20,
	MediaVoice: 2 << 20,
	MediaVideo: 10 << 20,
	MediaFile:  20 << 20,
}

// maxRecipients is message/send's limit on touser.
const maxRecipients = 1000

// Config is what New needs. CorpID, Secret and AgentID are required.
type Config struct {
	CorpID  string
	Secret  string // the self-built app's secret
	AgentID int
	// APIBase replaces https://qyapi.weixin.qq.com (TACKLEGATE_WECOM_API_BASE),
	// e.g. the simulator's http://127.0.0.1:PORT/wecom. Empty: production.
	// One base per process: see package apibase.
	APIBase string
	// TokenStore shares the access token between instances (Redis). Nil:
	// this process only.
	TokenStore token.Store
	Logger     *slog.Logger
	// Now is the clock the token lifetime is measured on. Default time.Now.
	Now func() time.Time
}

// Client sends WeCom app messages to staff and handles media and OAuth
// (WECHAT-PROTOCOLS.md §2.1–2.3) on silenceper/wechat's work packages, with
// the access token of token.Source. It is safe for concurrent use.
type Client struct {
	corpID     string
	secret     string
	agentID    string
	sdk        *config.Config
	tokens     *token.Source
	log        *slog.Logger
	unregister func()
}

// New builds a Client and points the process's WeCom requests at
// cfg.APIBase. Close releases the base.
func New(cfg Config) (*Client, error) {
	const op = "wecom.New"
	if cfg.CorpID == "" || cfg.Secret == "" || cfg.AgentID == 0 {
		return nil, rental.Errorf(op, rental.KindInvalid, "WeCom CorpID, Secret and AgentID are required")
	}
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	apibase.Install()
	unregister, err := apibase.Register(apibase.WeComHost, base)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_WECOM_API_BASE cannot be used", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "wecom")
	agentID := strconv.Itoa(cfg.AgentID)
	c := &Client{
		corpID:     cfg.CorpID,
		secret:     cfg.Secret,
		agentID:    agentID,
		sdk:        &config.Config{CorpID: cfg.CorpID, CorpSecret: cfg.Secret, AgentID: agentID},
		log:        logger,
		unregister: unregister,
	}
	// One token per (corp, secret): the app, 微信客服 and 客户联系 secrets
	// each have their own, so the key carries a fingerprint of the secret
	// (silenceper's keys do not, and mix them up — protocol doc §4).
	sum := sha256.Sum256([]byte(cfg.Secret))
	c.tokens, err = token.New(token.Config{
		Key:     "wecom:" + cfg.CorpID + ":" + agentID + ":" + hex.EncodeToString(sum[:4]),
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

// Tokens returns the client's token source.
func (c *Client) Tokens() *token.Source { return c.tokens }

// fetchToken: GET /cgi-bin/gettoken, which returns the same token while it
// is valid, so uncoordinated fetches do not invalidate each other.
func (c *Client) fetchToken(ctx context.Context) (token.Token, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	u := apibase.URL(apibase.WeComHost, "/cgi-bin/gettoken", url.Values{"corpid": {c.corpID}, "corpsecret": {c.secret}})
	if err := apibase.GetJSON(ctx, "wecom.FetchToken", u, &out); err != nil {
		var e *APIError
		if errors.As(err, &e) {
			e.TokenFetch = true
		}
		return token.Token{}, err
	}
	return token.Token{Value: out.AccessToken, ExpiresIn: time.Duration(out.ExpiresIn) * time.Second}, nil
}

// call runs a silenceper call with the current token and the caller's
// context, refreshing and retrying once if the token is refused.
func (c *Client) call(ctx context.Context, op string, fn func(sdk *workctx.Context) error) error {
	err := c.tokens.Use(ctx, func(ctx context.Context, tok string) error {
		bound := apibase.Bind(ctx)
		defer bound.Release()
		sdk := &workctx.Context{Config: c.sdk, AccessTokenHandle: apibase.FixedToken(bound.Token(tok))}
		return apibase.FromSDK(op, fn(sdk))
	})
	return c.done(op, err)
}

func (c *Client) done(op string, err error) error {
	if err == nil {
		return nil
	}
	err = apibase.Wrap(op, err)
	c.log.Debug("api call failed", "op", op, "err", err)
	return err
}

// SendResult is what message/send reports. A send with some bad recipients
// still reaches the others; when all are bad the send fails (81013).
type SendResult struct {
	MsgID           string
	InvalidUsers    []string // lower-cased by WeCom
	UnlicensedUsers []string // members without a WeCom interface licence
}

// TextCard is a textcard message: the card opens URL.
type TextCard struct {
	Title       string // ≤128 bytes
	Description string // ≤512 bytes; may use <div class="gray|normal|highlight">
	URL         string
	ButtonText  string // ≤4 characters; WeCom shows 详情 when empty
}

// SendText sends a text message (≤2048 bytes; <a href> links allowed).
func (c *Client) SendText(ctx context.Context, touser []string, content string) (SendResult, error) {
	return c.send(ctx, "wecom.SendText", touser, content == "", func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error) {
		return m.SendText(message.SendTextRequest{SendRequestCommon: common, Text: message.TextField{Content: content}})
	})
}

// SendMarkdown sends a markdown message (≤2048 bytes), shown in the WeCom
// client only.
func (c *Client) SendMarkdown(ctx context.Context, touser []string, content string) (SendResult, error) {
	return c.send(ctx, "wecom.SendMarkdown", touser, content == "", func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error) {
		common.MsgType = "markdown"
		return m.Send("MessageSendMarkdown", struct {
			*message.SendRequestCommon
			Markdown message.TextField `json:"markdown"`
		}{common, message.TextField{Content: content}})
	})
}

// SendTextCard sends a card with a link, e.g. to a conversation in the
// staff console.
func (c *Client) SendTextCard(ctx context.Context, touser []string, card TextCard) (SendResult, error) {
	type textCard struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		URL         string `json:"url"`
		BtnTxt      string `json:"btntxt,omitempty"`
	}
	empty := card.Title == "" || card.Description == "" || card.URL == ""
	return c.send(ctx, "wecom.SendTextCard", touser, empty, func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error) {
		common.MsgType = "textcard"
		return m.Send("MessageSendTextCard", struct {
			*message.SendRequestCommon
			TextCard textCard `json:"textcard"`
		}{common, textCard{card.Title, card.Description, card.URL, card.ButtonText}})
	})
}

// SendImage sends an image uploaded with UploadMedia(MediaImage, …).
func (c *Client) SendImage(ctx context.Context, touser []string, mediaID string) (SendResult, error) {
	return c.send(ctx, "wecom.SendImage", touser, mediaID == "", func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error) {
		return m.SendImage(message.SendImageRequest{SendRequestCommon: common, Image: message.ImageField{MediaID: mediaID}})
	})
}

// SendVoice sends an AMR voice uploaded with UploadMedia(MediaVoice, …).
func (c *Client) SendVoice(ctx context.Context, touser []string, mediaID string) (SendResult, error) {
	return c.send(ctx, "wecom.SendVoice", touser, mediaID == "", func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error) {
		return m.SendVoice(message.SendVoiceRequest{SendRequestCommon: common, Voice: message.VoiceField{MediaID: mediaID}})
	})
}

type sendFunc func(m *message.Client, common *message.SendRequestCommon) (*message.SendResponse, error)

func (c *Client) send(ctx context.Context, op string, touser []string, empty bool, fn sendFunc) (SendResult, error) {
	if empty {
		return SendResult{}, rental.Errorf(op, rental.KindInvalid, "消息内容为空")
	}
	to, err := recipients(touser)
	if err != nil {
		return SendResult{}, rental.Wrap(op, rental.KindInvalid, "接收人无效", err)
	}
	var res *message.SendResponse
	err = c.call(ctx, op, func(sdk *workctx.Context) error {
		// agentid goes out as a JSON string, as silenceper declares it; the
		// server accepts both forms.
		common := &message.SendRequestCommon{ToUser: to, AgentID: c.agentID}
		var err error
		res, err = fn(message.NewClient(sdk), common)
		return err
	})
	if err != nil {
		return SendResult{}, err
	}
	return SendResult{MsgID: res.MsgID, InvalidUsers: splitIDs(res.InvalidUser), UnlicensedUsers: splitIDs(res.UnlicensedUser)}, nil
}

func recipients(touser []string) (string, error) {
	switch {
	case len(touser) == 0:
		return "", errors.New("no recipients")
	case len(touser) > maxRecipients:
		return "", errors.New("more than 1000 recipients")
	}
	for _, u := range touser {
		if u == "" || strings.ContainsAny(u, "| ") || u == "@all" {
			return "", errors.New("recipient " + strconv.Quote(u) + " is not a userid")
		}
	}
	return strings.Join(touser, "|"), nil
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// UploadMedia uploads temporary media (POST /cgi-bin/media/upload, field
// "media"), valid three days inside this corp, and returns its media_id.
func (c *Client) UploadMedia(ctx context.Context, mediaType, name string, r io.Reader) (string, error) {
	const op = "wecom.UploadMedia"
	limit, ok := mediaLimits[mediaType]
	if !ok {
		return "", rental.Errorf(op, rental.KindInvalid, "不支持的媒体类型 %q", mediaType)
	}
	// Read whole: the token retry may send the bytes twice.
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case err != nil:
		return "", rental.Wrap(op, rental.KindInvalid, "读取文件失败", err)
	case len(data) <= 5: // WeCom refuses files of 5 bytes or less
		return "", rental.Errorf(op, rental.KindInvalid, "文件为空或过小")
	case len(data) > limit:
		return "", rental.Errorf(op, rental.KindInvalid, "文件超过 %d MB", limit>>20)
	}
	if name == "" {
		name = mediaType
	}
	var mediaID string
	err = c.call(ctx, op, func(sdk *workctx.Context) error {
		res, err := material.NewClient(sdk).UploadTempFileFromReader(name, mediaType, bytes.NewReader(data))
		if err == nil {
			mediaID = res.MediaID
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if mediaID == "" {
		return "", c.done(op, &APIError{Op: op, Err: errors.New("answer has no media_id")})
	}
	return mediaID, nil
}

// GetMedia downloads temporary media (GET /cgi-bin/media/get) with its
// Content-Type. Hand-written: silenceper's GetTempFile returns the bytes
// only, and the type is what tells an AMR voice from a file when the copy is
// stored as evidence.
func (c *Client) GetMedia(ctx context.Context, mediaID string) ([]byte, string, error) {
	const op = "wecom.GetMedia"
	if mediaID == "" {
		return nil, "", rental.Errorf(op, rental.KindInvalid, "缺少 media_id")
	}
	var f apibase.File
	err := c.tokens.Use(ctx, func(ctx context.Context, tok string) error {
		var err error
		u := apibase.URL(apibase.WeComHost, "/cgi-bin/media/get", url.Values{"access_token": {tok}, "media_id": {mediaID}})
		f, err = apibase.GetFile(ctx, op, u)
		return err
	})
	if err != nil {
		return nil, "", c.done(op, err)
	}
	return f.Data, f.ContentType, nil
}

// UserIDFromOAuthCode resolves the code of a WeCom OAuth redirect to the
// member's userid (GET /cgi-bin/auth/getuserinfo). A refused code is
// rental.KindUnauthorized; a visitor who is not a member of the corp is
// rental.KindForbidden.
func (c *Client) UserIDFromOAuthCode(ctx context.Context, code string) (string, error) {
	const op = "wecom.UserIDFromOAuthCode"
	if code == "" {
		return "", rental.Errorf(op, rental.KindInvalid, "缺少授权 code")
	}
	var res *oauth.GetUserInfoResponse
	err := c.tokens.Use(ctx, func(ctx context.Context, tok string) error {
		bound := apibase.Bind(ctx)
		defer bound.Release()
		sdk := &workctx.Context{Config: c.sdk, AccessTokenHandle: apibase.FixedToken(bound.Token(tok))}
		var err error
		res, err = oauth.NewOauth(sdk).GetUserInfo(code)
		return apibase.FromSDK(op, err)
	})
	if err != nil {
		var e *APIError
		if errors.As(err, &e) && (e.Code == apibase.CodeInvalidCode || e.Code == apibase.CodeCodeUsed) {
			err = rental.Wrap(op, rental.KindUnauthorized, "登录凭证无效或已使用，请重新登录", err)
		}
		return "", c.done(op, err)
	}
	if res.UserID == "" {
		return "", rental.Errorf(op, rental.KindForbidden, "仅限本企业成员使用")
	}
	return res.UserID, nil
}
