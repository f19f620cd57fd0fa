package wechatpay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is the production API host. api2.mch.weixin.qq.com is the
// documented backup host; switching to it is the caller's decision.
const DefaultBaseURL = "https://api.mch.weixin.qq.com"

// DefaultMaxSkew is the largest |now − Wechatpay-Timestamp| accepted, the
// window wechatpay-go and the official docs use against replays.
const DefaultMaxSkew = 5 * time.Minute

// maxResponseBytes bounds what is read from WeChat Pay; real answers are a
// few KiB.
const maxResponseBytes = 1 << 20

// userAgent is sent on every request; WeChat Pay asks for a non-empty one.
const userAgent = "tacklegate-wechatpay/1 (Go; +https://github.com/tacklegate/tacklegate)"

// Config is what New needs. All fields except BaseURL, HTTPClient, Now and
// MaxSkew are required.
type Config struct {
	MchID      string          // 商户号
	SerialNo   string          // serial of the merchant API certificate (hex), sent as serial_no
	PrivateKey *rsa.PrivateKey // merchant API private key; see LoadPrivateKey
	// APIv3Key is the 32-character key set in the merchant console. Its 32
	// bytes are the AES-256 key as they are: no base64 or hex decoding.
	APIv3Key string

	// PlatformPublicKey verifies WeChat Pay's signatures; PlatformSerial is
	// the Wechatpay-Serial it signs with: "PUB_KEY_ID_…" in public-key mode or
	// a platform certificate serial. See LoadPublicKey.
	PlatformPublicKey *rsa.PublicKey
	PlatformSerial    string

	// BaseURL defaults to DefaultBaseURL. It may carry a path prefix (a
	// simulator mounted at http://127.0.0.1:1234/pay): the prefix is sent but
	// not signed, because the signature covers the API path as it is on the
	// real host.
	BaseURL string
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now defaults to time.Now. It stamps requests and judges response skew.
	Now func() time.Time
	// MaxSkew is the largest accepted |now − Wechatpay-Timestamp|. Zero means
	// DefaultMaxSkew; a negative value turns the check off (what
	// TACKLEGATE_CALLBACK_MAX_SKEW=0 asks for).
	MaxSkew time.Duration
}

// Client calls WeChat Pay API v3 and parses its notifications. It is safe for
// concurrent use.
type Client struct {
	mchID          string
	serialNo       string
	key            *rsa.PrivateKey
	apiV3Key       []byte
	platformKey    *rsa.PublicKey
	platformSerial string
	baseURL        string // scheme://host[/prefix], no trailing slash
	hc             *http.Client
	now            func() time.Time
	maxSkew        time.Duration // ≤0: check off
}

// New validates cfg and returns a Client. Every problem is reported at once,
// each naming the field.
func New(cfg Config) (*Client, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.MchID == "" {
		bad("MchID is empty")
	}
	if cfg.SerialNo == "" {
		bad("SerialNo (merchant certificate serial) is empty")
	}
	if cfg.PrivateKey == nil {
		bad("PrivateKey is nil")
	} else if n := cfg.PrivateKey.N.BitLen(); n < minKeyBits {
		bad("PrivateKey is RSA %d; WeChat Pay uses RSA %d", n, minKeyBits)
	}
	if len(cfg.APIv3Key) != 32 {
		bad("APIv3Key must be exactly 32 bytes, got %d", len(cfg.APIv3Key))
	}
	if cfg.PlatformPublicKey == nil {
		bad("PlatformPublicKey is nil")
	}
	if cfg.PlatformSerial == "" {
		bad("PlatformSerial is empty (PUB_KEY_ID_… or the platform certificate serial)")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	if u, err := url.Parse(base); err != nil {
		bad("BaseURL %q: %v", cfg.BaseURL, err)
	} else if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("BaseURL %q must be http(s)://host[/prefix] without query or fragment", cfg.BaseURL)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("wechatpay: invalid config: %w", errors.Join(errs...))
	}
	c := &Client{
		mchID:          cfg.MchID,
		serialNo:       cfg.SerialNo,
		key:            cfg.PrivateKey,
		apiV3Key:       []byte(cfg.APIv3Key),
		platformKey:    cfg.PlatformPublicKey,
		platformSerial: cfg.PlatformSerial,
		baseURL:        base,
		hc:             cfg.HTTPClient,
		now:            cfg.Now,
		maxSkew:        cfg.MaxSkew,
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxSkew == 0 {
		c.maxSkew = DefaultMaxSkew
	}
	return c, nil
}

// MchID returns the merchant id the client signs as.
func (c *Client) MchID() string { return c.mchID }

// do sends one signed request and verifies the answer. apiPath is the escaped
// API path ("/v3/…"); query may be nil; in, when not nil, is marshaled once
// and those exact bytes are both signed and sent; out, when not nil, receives
// a 2xx JSON body.
func (c *Client) do(ctx context.Context, method, apiPath string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("wechatpay: %s %s: encode body: %w", method, apiPath, err)
		}
	}
	canonical := apiPath
	if q := query.Encode(); q != "" {
		canonical += "?" + q
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	nonce := newNonce()
	sig, err := signSHA256WithRSA(c.key, requestMessage(method, canonical, ts, nonce, body))
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+canonical, rd)
	if err != nil {
		return fmt.Errorf("wechatpay: %s %s: %w", method, apiPath, err)
	}
	req.Header.Set("Authorization", authorization(c.mchID, nonce, ts, c.serialNo, sig))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	// Says which key we expect WeChat Pay to sign the answer with.
	req.Header.Set(headerSerial, c.platformSerial)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("wechatpay: %s %s: %w", method, apiPath, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("wechatpay: %s %s: read answer (HTTP %d): %w", method, apiPath, resp.StatusCode, err)
	}
	if len(respBody) > maxResponseBytes {
		return fmt.Errorf("wechatpay: %s %s: answer (HTTP %d) exceeds %d bytes", method, apiPath, resp.StatusCode, maxResponseBytes)
	}
	// Verify before reading anything, error answers included: an unsigned
	// "error" could be anyone's.
	if err := c.verify(resp.Header, respBody); err != nil {
		return fmt.Errorf("wechatpay: %s %s: HTTP %d answer: %w", method, apiPath, resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseAPIError(resp.StatusCode, headerValue(resp.Header, headerRequestID), respBody)
	}
	if out == nil {
		return nil
	}
	if len(respBody) == 0 {
		return fmt.Errorf("wechatpay: %s %s: HTTP %d answer has no body", method, apiPath, resp.StatusCode)
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return fmt.Errorf("wechatpay: %s %s: decode answer: %w", method, apiPath, err)
	}
	return nil
}
