package finops

// Tenants and their API keys live in a storage.KV:
//
//	tenant/<name>              -> Tenant (JSON)
//	apikey/<sha256 of the key> -> KeyInfo (JSON)
//	tenantkey/<tenant>/<id>    -> the SHA-256, hex, of the key
//
// A key is 256 random bits; only its SHA-256 is stored. A slow password hash buys
// nothing for a key with that much entropy (no dictionary to try), while a fast
// one keeps authentication to one hash and one read.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stated-dev/stated/storage"
)

// DefaultTenant is the tenant of every client when authentication is off.
const DefaultTenant = "default"

// KeyPrefix starts every API key, so that a leaked key is recognizable (and
// secret scanners can be taught to find it).
const KeyPrefix = "sk-stated-"

const (
	tenantPrefix    = "tenant/"
	apiKeyPrefix    = "apikey/"
	tenantKeyPrefix = "tenantkey/"
	// maxTenantLen is the longest tenant name.
	maxTenantLen = 64
	// maxKeyNameLen bounds the label of a key.
	maxKeyNameLen = 128
	// maxPresentedKey bounds a presented key before it is hashed.
	maxPresentedKey = 256
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").
	WithPadding(base32.NoPadding)

// Tenant is an account: sessions, keys, budgets and ledger entries belong to one.
type Tenant struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// KeyInfo describes an API key; it never holds the key.
type KeyInfo struct {
	ID      string    `json:"id"`
	Tenant  string    `json:"tenant"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	// Hint is the key's first characters, to tell keys apart in a list.
	Hint string `json:"hint"`
}

// Tenants keeps tenants and API keys in a storage.KV. It is safe for concurrent
// use.
type Tenants struct {
	kv storage.KV
}

// NewTenants returns the tenants kept in kv.
func NewTenants(kv storage.KV) *Tenants {
	return &Tenants{kv: kv}
}

// ValidTenant checks a tenant name: 1 to 64 bytes of lower-case letters, digits,
// '-' and '_', starting with a letter or digit. It returns ErrInvalidTenant.
func ValidTenant(name string) error {
	if name == "" || len(name) > maxTenantLen || name[0] == '-' || name[0] == '_' {
		return fmt.Errorf("%w: %.80q: want 1 to %d of a-z, 0-9, - and _", ErrInvalidTenant,
			name, maxTenantLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %.80q: want 1 to %d of a-z, 0-9, - and _",
				ErrInvalidTenant, name, maxTenantLen)
		}
	}
	return nil
}

// Create adds a tenant. Errors: ErrInvalidTenant, ErrTenantExists, or a storage
// error.
func (t *Tenants) Create(ctx context.Context, name string) (Tenant, error) {
	if err := ValidTenant(name); err != nil {
		return Tenant{}, err
	}
	tn := Tenant{Name: name, Created: time.Now().UTC()}
	data, err := json.Marshal(tn)
	if err != nil {
		return Tenant{}, fmt.Errorf("finops: encode tenant: %w", err)
	}
	_, err = t.kv.CompareAndPut(ctx, tenantPrefix+name, data, 0)
	if errors.Is(err, storage.ErrRevisionConflict) {
		return Tenant{}, fmt.Errorf("%w: %s", ErrTenantExists, name)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("finops: create tenant: %w", err)
	}
	return tn, nil
}

// Get returns a tenant, or ErrTenantNotFound.
func (t *Tenants) Get(ctx context.Context, name string) (Tenant, error) {
	if ValidTenant(name) != nil {
		return Tenant{}, fmt.Errorf("%w: %.80q", ErrTenantNotFound, name)
	}
	data, _, err := t.kv.Get(ctx, tenantPrefix+name)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return Tenant{}, fmt.Errorf("%w: %s", ErrTenantNotFound, name)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("finops: read tenant: %w", err)
	}
	var tn Tenant
	if err := json.Unmarshal(data, &tn); err != nil {
		return Tenant{}, fmt.Errorf("finops: decode tenant %s: %w", name, err)
	}
	return tn, nil
}

// List returns every tenant, in name order.
func (t *Tenants) List(ctx context.Context) ([]Tenant, error) {
	entries, err := t.kv.List(ctx, tenantPrefix, "", 0)
	if err != nil {
		return nil, fmt.Errorf("finops: list tenants: %w", err)
	}
	out := make([]Tenant, 0, len(entries))
	for _, e := range entries {
		var tn Tenant
		if err := json.Unmarshal(e.Value, &tn); err != nil {
			return nil, fmt.Errorf("finops: decode tenant %s: %w", e.Key, err)
		}
		out = append(out, tn)
	}
	return out, nil
}

// Delete removes a tenant and revokes its keys. Its sessions, budgets and ledger
// entries stay. Errors: ErrTenantNotFound, or a storage error.
func (t *Tenants) Delete(ctx context.Context, name string) error {
	if _, err := t.Get(ctx, name); err != nil {
		return err
	}
	keys, err := t.Keys(ctx, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.RevokeKey(ctx, name, k.ID); err != nil {
			return err
		}
	}
	if err := t.kv.Delete(ctx, tenantPrefix+name); err != nil {
		return fmt.Errorf("finops: delete tenant: %w", err)
	}
	return nil
}

// IssueKey creates an API key for tenant and returns it, with its description.
// The key itself is returned only here: the store keeps its hash. Errors:
// ErrTenantNotFound, ErrInvalidTenant for a name over 128 bytes, or a storage error.
func (t *Tenants) IssueKey(ctx context.Context, tenant, name string) (string, KeyInfo,
	error) {
	if len(name) > maxKeyNameLen {
		return "", KeyInfo{}, fmt.Errorf("%w: key name over %d bytes", ErrInvalidTenant,
			maxKeyNameLen)
	}
	if _, err := t.Get(ctx, tenant); err != nil {
		return "", KeyInfo{}, err
	}
	var secret, id [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", KeyInfo{}, fmt.Errorf("finops: random key: %w", err)
	}
	if _, err := rand.Read(id[:6]); err != nil {
		return "", KeyInfo{}, fmt.Errorf("finops: random key id: %w", err)
	}
	key := KeyPrefix + keyEncoding.EncodeToString(secret[:])
	info := KeyInfo{ID: "key_" + hex.EncodeToString(id[:6]), Tenant: tenant, Name: name,
		Created: time.Now().UTC(), Hint: key[:len(KeyPrefix)+4]}
	hash := hashKey(key)

	data, err := json.Marshal(info)
	if err != nil {
		return "", KeyInfo{}, fmt.Errorf("finops: encode key: %w", err)
	}
	if _, err := t.kv.CompareAndPut(ctx, apiKeyPrefix+hash, data, 0); err != nil {
		return "", KeyInfo{}, fmt.Errorf("finops: store key: %w", err)
	}
	if _, err := t.kv.Put(ctx, tenantKeyPrefix+tenant+"/"+info.ID, []byte(hash)); err != nil {
		t.kv.Delete(ctx, apiKeyPrefix+hash)
		return "", KeyInfo{}, fmt.Errorf("finops: store key: %w", err)
	}
	return key, info, nil
}

// Keys returns the keys of tenant, in ID order.
func (t *Tenants) Keys(ctx context.Context, tenant string) ([]KeyInfo, error) {
	if ValidTenant(tenant) != nil {
		return nil, fmt.Errorf("%w: %.80q", ErrTenantNotFound, tenant)
	}
	index, err := t.kv.List(ctx, tenantKeyPrefix+tenant+"/", "", 0)
	if err != nil {
		return nil, fmt.Errorf("finops: list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(index))
	for _, e := range index {
		info, err := t.keyInfo(ctx, string(e.Value))
		if errors.Is(err, ErrUnauthorized) {
			continue // revoked halfway; the index entry is a leftover
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// RevokeKey deletes a key of tenant: it authenticates nobody from then on.
// Errors: ErrKeyNotFound, or a storage error.
func (t *Tenants) RevokeKey(ctx context.Context, tenant, id string) error {
	if ValidTenant(tenant) != nil || !validName(id, 64) {
		return fmt.Errorf("%w: %.80q", ErrKeyNotFound, id)
	}
	indexKey := tenantKeyPrefix + tenant + "/" + id
	hash, _, err := t.kv.Get(ctx, indexKey)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("finops: read key: %w", err)
	}
	if err := t.kv.Delete(ctx, apiKeyPrefix+string(hash)); err != nil {
		return fmt.Errorf("finops: revoke key: %w", err)
	}
	if err := t.kv.Delete(ctx, indexKey); err != nil {
		return fmt.Errorf("finops: revoke key: %w", err)
	}
	return nil
}

// Authenticate returns the key that key is. Every failure (malformed, unknown,
// revoked) is ErrUnauthorized, except a storage error.
func (t *Tenants) Authenticate(ctx context.Context, key string) (KeyInfo, error) {
	if len(key) > maxPresentedKey || !strings.HasPrefix(key, KeyPrefix) {
		return KeyInfo{}, ErrUnauthorized
	}
	return t.keyInfo(ctx, hashKey(key))
}

// keyInfo reads the key whose hash is hash.
func (t *Tenants) keyInfo(ctx context.Context, hash string) (KeyInfo, error) {
	data, _, err := t.kv.Get(ctx, apiKeyPrefix+hash)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return KeyInfo{}, ErrUnauthorized
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("finops: read key: %w", err)
	}
	var info KeyInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return KeyInfo{}, fmt.Errorf("finops: decode key: %w", err)
	}
	return info, nil
}

// HasKeys reports whether any tenant has an API key.
func (t *Tenants) HasKeys(ctx context.Context) (bool, error) {
	keys, err := t.kv.List(ctx, apiKeyPrefix, "", 1)
	if err != nil {
		return false, fmt.Errorf("finops: list keys: %w", err)
	}
	return len(keys) > 0, nil
}

// hashKey returns the SHA-256 of key, hex.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// SameKey reports whether two secrets are equal, in time that depends only on
// their hashes' length, not on where they differ.
func SameKey(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
