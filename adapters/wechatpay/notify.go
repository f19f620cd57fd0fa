package wechatpay

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// algorithmAEAD is the only resource algorithm WeChat Pay v3 uses.
const algorithmAEAD = "AEAD_AES_256_GCM"

// gcmNonceSize is the length of resource.nonce: 12 characters, used as bytes.
const gcmNonceSize = 12

// ParseNotification authenticates and decrypts a payment or refund
// notification POSTed to our notify_url. It verifies the signature and
// timestamp first (failures wrap ErrSignature → answer 401) and only then
// parses and decrypts the resource (failures wrap ErrUndecryptable → answer
// 400). body must be the raw request body, byte for byte.
//
// A verified notification must be acknowledged with 200/204 even when the
// order is unknown to us (see DESIGN.md "Callback answers"); process it
// idempotently by Notification.ID or by out_trade_no.
func (c *Client) ParseNotification(h http.Header, body []byte) (*Notification, error) {
	if err := c.verify(h, body); err != nil {
		return nil, fmt.Errorf("wechatpay: notification: %w", err)
	}
	return c.decodeNotification(body)
}

// decodeNotification is the part of ParseNotification after the signature
// check: envelope, decryption, typed plaintext.
func (c *Client) decodeNotification(body []byte) (*Notification, error) {
	var env struct {
		ID           string `json:"id"`
		CreateTime   string `json:"create_time"`
		ResourceType string `json:"resource_type"`
		EventType    string `json:"event_type"`
		Summary      string `json:"summary"`
		Resource     *struct {
			OriginalType   string `json:"original_type"`
			Algorithm      string `json:"algorithm"`
			Ciphertext     string `json:"ciphertext"`
			AssociatedData string `json:"associated_data"`
			Nonce          string `json:"nonce"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope is not JSON: %v", ErrUndecryptable, err)
	}
	if env.ID == "" || env.EventType == "" {
		return nil, fmt.Errorf("%w: envelope lacks id or event_type", ErrUndecryptable)
	}
	if env.Resource == nil {
		return nil, fmt.Errorf("%w: envelope has no resource", ErrUndecryptable)
	}
	res := env.Resource
	if res.Algorithm != algorithmAEAD {
		return nil, fmt.Errorf("%w: resource algorithm %q, want %s", ErrUndecryptable, res.Algorithm, algorithmAEAD)
	}
	createTime, err := parseOptionalTime("create_time", env.CreateTime)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecryptable, err)
	}
	plaintext, err := openResource(c.apiV3Key, []byte(res.Nonce), []byte(res.AssociatedData), res.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecryptable, err)
	}
	n := &Notification{
		ID:           env.ID,
		CreateTime:   createTime,
		EventType:    env.EventType,
		Summary:      env.Summary,
		ResourceType: env.ResourceType,
		OriginalType: res.OriginalType,
		Plaintext:    plaintext,
	}
	switch {
	case strings.HasPrefix(env.EventType, "TRANSACTION."):
		var t Transaction
		if err := json.Unmarshal(plaintext, &t); err != nil {
			return nil, fmt.Errorf("%w: transaction resource: %v", ErrUndecryptable, err)
		}
		n.Transaction = &t
	case strings.HasPrefix(env.EventType, "REFUND."):
		var r RefundNotice
		if err := json.Unmarshal(plaintext, &r); err != nil {
			return nil, fmt.Errorf("%w: refund resource: %v", ErrUndecryptable, err)
		}
		n.Refund = &r
	}
	return n, nil
}

// openResource decrypts an AEAD_AES_256_GCM resource: key is the APIv3 key's
// bytes, nonce and aad are resource.nonce and resource.associated_data as
// bytes, and the base64-decoded ciphertext ends with the 16-byte GCM tag.
//
// It takes the key length as given (aes.NewCipher picks AES-128/192/256) so
// published 16-byte test vectors can exercise it; New insists on 32 bytes.
func openResource(key, nonce, aad []byte, ciphertextB64 string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertextB64)
	if err != nil {
		return nil, errors.New("resource ciphertext is not base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("APIv3 key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// cipher.AEAD.Open panics on a wrong nonce length, and the nonce comes
	// from the (authenticated, but still external) body.
	if len(nonce) != gcmNonceSize {
		return nil, fmt.Errorf("resource nonce is %d bytes, want %d", len(nonce), gcmNonceSize)
	}
	if len(ct) < aead.Overhead() {
		return nil, errors.New("resource ciphertext is shorter than the GCM tag")
	}
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, errors.New("resource does not decrypt with the APIv3 key (wrong key, nonce or associated_data)")
	}
	return pt, nil
}
