package wechatpay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Scheme is the Authorization scheme of API v3 requests and the value of the
// Wechatpay-Signature-Type header on responses and notifications.
const Scheme = "WECHATPAY2-SHA256-RSA2048"

// signProbePrefix starts the signature of WeChat Pay's "signature probe"
// traffic, which exists to catch merchants that skip verification.
const signProbePrefix = "WECHATPAY/SIGNTEST/"

// Response and notification headers (canonical MIME form, as net/http keeps them).
const (
	headerTimestamp     = "Wechatpay-Timestamp"
	headerNonce         = "Wechatpay-Nonce"
	headerSignature     = "Wechatpay-Signature"
	headerSerial        = "Wechatpay-Serial"
	headerSignatureType = "Wechatpay-Signature-Type"
	headerRequestID     = "Request-Id" // "Request-ID" on the wire; net/http canonicalizes
)

// requestMessage is the string a merchant signs (§3.2). canonicalURL is the
// path plus "?"+raw query, without scheme and host; body is the exact bytes
// sent, empty for GET.
func requestMessage(method, canonicalURL, timestamp, nonce string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(canonicalURL) + len(timestamp) + len(nonce) + len(body) + 5)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURL)
	b.WriteByte('\n')
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	return []byte(b.String())
}

// responseMessage is the string WeChat Pay signs on responses and
// notifications (§3.3); an empty body (204) makes it end "\n\n".
func responseMessage(timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	msg = append(msg, '\n')
	return msg
}

// signSHA256WithRSA returns base64(RSASSA-PKCS1-v1_5(SHA-256(msg))).
func signSHA256WithRSA(key *rsa.PrivateKey, msg []byte) (string, error) {
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("wechatpay: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// authorization renders the Authorization header value of a signed request.
func authorization(mchID, nonce, timestamp, serialNo, signature string) string {
	return Scheme + ` mchid="` + mchID + `",nonce_str="` + nonce + `",timestamp="` + timestamp +
		`",serial_no="` + serialNo + `",signature="` + signature + `"`
}

// newNonce returns 32 upper-case hex characters from crypto/rand, the shape
// the official examples use (593BEC0C930BF1AFEB40B4A08C8FB242).
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// verify authenticates a response or notification: the four Wechatpay-*
// headers, the serial, the timestamp skew and the signature over the exact
// body bytes. Every failure wraps ErrSignature.
func (c *Client) verify(h http.Header, body []byte) error {
	ts := headerValue(h, headerTimestamp)
	nonce := headerValue(h, headerNonce)
	sig := headerValue(h, headerSignature)
	serial := headerValue(h, headerSerial)
	switch {
	case ts == "":
		return fmt.Errorf("%w: missing %s header", ErrSignature, headerTimestamp)
	case nonce == "":
		return fmt.Errorf("%w: missing %s header", ErrSignature, headerNonce)
	case sig == "":
		return fmt.Errorf("%w: missing %s header", ErrSignature, headerSignature)
	case serial == "":
		return fmt.Errorf("%w: missing %s header", ErrSignature, headerSerial)
	}
	if st := headerValue(h, headerSignatureType); st != "" && st != Scheme {
		return fmt.Errorf("%w: unsupported %s %q", ErrSignature, headerSignatureType, st)
	}
	if strings.HasPrefix(sig, signProbePrefix) {
		// A probe is WeChat Pay checking that we verify at all; it must fail.
		return fmt.Errorf("%w: signature probe (%s…) rejected", ErrSignature, signProbePrefix)
	}
	if serial != c.platformSerial {
		return fmt.Errorf("%w: unknown %s %q (configured: %q)", ErrSignature, headerSerial, serial, c.platformSerial)
	}
	sec, err := parseUnixSeconds(ts)
	if err != nil {
		return fmt.Errorf("%w: bad %s %q", ErrSignature, headerTimestamp, ts)
	}
	if c.maxSkew > 0 {
		skew := c.now().Sub(time.Unix(sec, 0))
		if skew < 0 {
			skew = -skew
		}
		if skew >= c.maxSkew {
			return fmt.Errorf("%w: %s %s is %s away from now (max %s)", ErrSignature, headerTimestamp, ts, skew.Round(time.Second), c.maxSkew)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrSignature, headerSignature)
	}
	digest := sha256.Sum256(responseMessage(ts, nonce, body))
	if err := rsa.VerifyPKCS1v15(c.platformKey, crypto.SHA256, digest[:], raw); err != nil {
		return fmt.Errorf("%w: signature does not match the body", ErrSignature)
	}
	return nil
}

// parseUnixSeconds accepts only plain decimal digits: strconv alone would
// also take "+123", which no honest signer sends.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" || len(s) > 12 {
		return 0, fmt.Errorf("bad length")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// headerValue reads a header by canonical name and falls back to a
// case-insensitive scan, because callers outside net/http (the gateway uses
// fiber) may fill an http.Header map with the keys as they came off the wire.
func headerValue(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return strings.TrimSpace(v)
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return strings.TrimSpace(vs[0])
		}
	}
	return ""
}
