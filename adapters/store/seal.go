package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// sealVersion prefixes every sealed value so the scheme can change later
// without guessing what old rows hold.
const sealVersion = 1

// sealer encrypts values at rest with AES-256-GCM under the data key. The
// associated data binds a ciphertext to its row (e.g. channel and dedupe
// key), so moving a sealed payload to another row makes it unreadable.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain, ad []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) //nolint:errcheck // crypto/rand never fails on Linux
	return s.aead.Seal(out, out[1:], plain, ad)
}

var errSealed = errors.New("sealed value cannot be opened: wrong data key, or the row was altered")

func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errSealed
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}
