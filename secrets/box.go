// Package secrets seals secrets stored at rest (gateway tokens) with
// AES-256-GCM, and manages the key they are sealed under.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// SealedPrefix marks a sealed value, so rows written before sealing existed
// (plaintext) can be told apart and sealed by migrate.
const SealedPrefix = "enc:v1:"

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext. The binding (for example the userId it belongs
// to) is authenticated but not stored: a sealed value copied to another
// row does not open there.
func (b *Box) Seal(plaintext, binding string) string {
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce)
	sealed := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(binding))
	return SealedPrefix + base64.RawStdEncoding.EncodeToString(sealed)
}

// ErrTampered is returned for a sealed value that does not open: another
// key, another binding, or changed bytes.
var ErrTampered = errors.New("sealed value does not open with this key")

// Open decrypts a value made by Seal with the same binding. A value that is
// not sealed (a row from before sealing) is returned as it is.
func (b *Box) Open(stored, binding string) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(stored, SealedPrefix))
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrTampered
	}
	nonce, ciphertext := raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():]
	plain, err := b.aead.Open(nil, nonce, ciphertext, []byte(binding))
	if err != nil {
		return "", ErrTampered
	}
	return string(plain), nil
}

// IsSealed reports whether stored was made by Seal.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, SealedPrefix) }

// ParseKey reads a key given as 64 hex digits or as base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if key, err := hex.DecodeString(s); err == nil && len(key) == KeySize {
		return key, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("secret key must be 32 bytes as 64 hex digits or base64 (try: openssl rand -hex 32)")
}

// LoadOrCreateKeyFile reads the key in path, creating the file with a new
// random key, readable by its owner only (0600), when it does not exist.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, KeySize)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKeyFile(path) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("creating the secret key file: %w", err)
		}
		defer f.Close()
		if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
			return nil, fmt.Errorf("writing the secret key file: %w", err)
		}
		return key, f.Sync()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secret key file: %w", err)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return key, nil
}
