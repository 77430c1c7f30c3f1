// Package auth issues and recognises API keys and carries the caller's
// identity (the Principal) through a request's context.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// KeyPrefix starts every key this service issues, so a key pasted into a
// chat or a repository is recognisable (and greppable by secret scanners).
const KeyPrefix = "agb_"

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewKey returns a fresh raw key and its display prefix. The key is
// "agb_" + 8 characters of non-secret prefix + "_" + 256 random bits; the
// display prefix is the part before the second underscore.
func NewKey() (raw, prefix string) {
	id := make([]byte, 5)
	secret := make([]byte, 32)
	rand.Read(id)
	rand.Read(secret)
	prefix = KeyPrefix + strings.ToLower(encoding.EncodeToString(id))
	return prefix + "_" + strings.ToLower(encoding.EncodeToString(secret)), prefix
}

// Hash is what the database stores and looks keys up by: the hex SHA-256 of
// the raw key, as the registration API documents.
func Hash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// BearerToken extracts the key from an Authorization header value; the
// scheme is case-insensitive. It returns "" when there is no bearer token.
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
