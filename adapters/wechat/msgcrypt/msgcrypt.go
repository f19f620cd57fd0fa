// Package msgcrypt implements the callback crypto WeChat and WeCom share
// (WXBizMsgCrypt): SHA-1 signatures over sorted parameters and AES-256-CBC
// with the EncodingAESKey, IV = key[:16], PKCS#7 padding to 32-byte blocks,
// and the receiver id (AppID or CorpID) appended to every plaintext.
//
// It is written from the protocol description, independently of the
// silenceper helpers the simulator uses, so that a bug on one side cannot hide
// behind the same bug on the other.
package msgcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// blockSize is WXBizMsgCrypt's padding block: 32 bytes, not AES's 16.
const blockSize = 32

// Errors a caller maps to responses: ErrSignature and ErrReceiver mean "not
// from WeChat for us" (401); ErrMalformed means it cannot be decrypted (400).
var (
	ErrSignature = errors.New("msgcrypt: signature mismatch")
	ErrReceiver  = errors.New("msgcrypt: message is for another receiver")
	ErrMalformed = errors.New("msgcrypt: ciphertext is malformed")
)

// Crypter verifies, decrypts and encrypts for one receiver.
type Crypter struct {
	token     string
	block     cipher.Block
	iv        []byte
	receiveID string
}

// New builds a Crypter. encodingAESKey is the 43-character key from the
// console; receiveID is the mini-program AppID or the WeCom CorpID.
func New(token, encodingAESKey, receiveID string) (*Crypter, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("msgcrypt: EncodingAESKey has %d characters, want 43", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("msgcrypt: EncodingAESKey does not decode to 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &Crypter{token: token, block: block, iv: key[:16], receiveID: receiveID}, nil
}

// Signature is lower-hex SHA-1 of the parts sorted as strings and joined.
func Signature(parts ...string) string {
	sorted := append([]string(nil), parts...)
	sort.Strings(sorted)
	sum := sha1.Sum([]byte(strings.Join(sorted, "")))
	return hex.EncodeToString(sum[:])
}

// Verify checks a signature over the token, timestamp, nonce and, for
// msg_signature, the Encrypt field or echostr. It compares in constant time.
func (c *Crypter) Verify(signature, timestamp, nonce string, extra ...string) error {
	parts := append([]string{c.token, timestamp, nonce}, extra...)
	want := Signature(parts...)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) != 1 {
		return ErrSignature
	}
	return nil
}

// Sign returns the signature Verify expects; the simulator side of tests and
// passive replies use it.
func (c *Crypter) Sign(timestamp, nonce string, extra ...string) string {
	return Signature(append([]string{c.token, timestamp, nonce}, extra...)...)
}

// Decrypt opens a base64 ciphertext and checks that it was made for this
// receiver. It never panics on hostile input.
func (c *Crypter) Decrypt(b64 string) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of AES blocks", ErrMalformed, len(data))
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(plain, data)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > blockSize || pad > len(plain) {
		return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
		}
	}
	plain = plain[:len(plain)-pad]
	// random(16) | length(4, big endian) | msg | receiveid
	if len(plain) < 20 {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(plain[16:20])
	if uint64(n) > uint64(len(plain)-20) {
		return nil, fmt.Errorf("%w: length %d exceeds the plaintext", ErrMalformed, n)
	}
	msg, receiver := plain[20:20+n], plain[20+n:]
	if subtle.ConstantTimeCompare(receiver, []byte(c.receiveID)) != 1 {
		return nil, ErrReceiver
	}
	return msg, nil
}

// Encrypt seals msg for this receiver with a fresh random prefix.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", err
	}
	return c.encrypt(random, msg), nil
}

func (c *Crypter) encrypt(random [16]byte, msg []byte) string {
	body := make([]byte, 0, 20+len(msg)+len(c.receiveID)+blockSize)
	body = append(body, random[:]...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(msg)))
	body = append(body, msg...)
	body = append(body, c.receiveID...)
	pad := blockSize - len(body)%blockSize
	for i := 0; i < pad; i++ {
		body = append(body, byte(pad))
	}
	out := make([]byte, len(body))
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(out, body)
	return base64.StdEncoding.EncodeToString(out)
}
