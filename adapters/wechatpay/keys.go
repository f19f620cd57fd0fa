package wechatpay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// minKeyBits is the size WeChat Pay issues and accepts ("RSA2048" is in the
// name of the signature scheme); a smaller key is a configuration mistake.
const minKeyBits = 2048

// LoadPrivateKey parses the merchant API private key (apiclient_key.pem). It
// accepts PKCS#8 ("BEGIN PRIVATE KEY", what the merchant certificate tool
// writes) and PKCS#1 ("BEGIN RSA PRIVATE KEY", what the official docs' test key
// uses). Text before the PEM block is ignored.
func LoadPrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, err := findPEM(pemBytes, "PRIVATE KEY", "RSA PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("wechatpay: merchant private key: %w", err)
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wechatpay: merchant private key: PKCS#8: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("wechatpay: merchant private key: want RSA, got %T", k)
		}
		key = rk
	default: // "RSA PRIVATE KEY"
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wechatpay: merchant private key: PKCS#1: %w", err)
		}
		key = k
	}
	if n := key.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("wechatpay: merchant private key is RSA %d; WeChat Pay uses RSA %d", n, minKeyBits)
	}
	return key, nil
}

// LoadPublicKey parses the key that verifies WeChat Pay's signatures: the
// WeChat Pay public key file (PKIX "BEGIN PUBLIC KEY", the PUB_KEY_ID_… mode)
// or a platform certificate ("BEGIN CERTIFICATE"). PKCS#1 "BEGIN RSA PUBLIC
// KEY" is accepted too.
func LoadPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, err := findPEM(pemBytes, "PUBLIC KEY", "CERTIFICATE", "RSA PUBLIC KEY")
	if err != nil {
		return nil, fmt.Errorf("wechatpay: platform public key: %w", err)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default: // "RSA PUBLIC KEY"
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("wechatpay: platform public key: %s: %w", block.Type, err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("wechatpay: platform public key: want RSA, got %T", pub)
	}
	if n := key.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("wechatpay: platform public key is RSA %d; WeChat Pay uses RSA %d", n, minKeyBits)
	}
	return key, nil
}

// findPEM returns the first PEM block of one of the wanted types, so a file
// holding a certificate chain or a key after "Bag Attributes" text still loads.
func findPEM(data []byte, types ...string) (*pem.Block, error) {
	if len(data) == 0 {
		return nil, errors.New("empty input")
	}
	var seen []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if _, encrypted := block.Headers["DEK-Info"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the PEM block is password-encrypted; decrypt it first (openssl pkcs8 -nocrypt / openssl rsa)")
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
		seen = append(seen, block.Type)
	}
	if len(seen) == 0 {
		return nil, errors.New("no PEM block found")
	}
	return nil, fmt.Errorf("want a PEM block of type %q, found %q", types, seen)
}
