package finops

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stated-dev/stated/storage"
)

func TestTenantKeysAuthenticateUntilRevoked(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		ts := NewTenants(kv)
		if _, err := ts.Create(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		key, info, err := ts.IssueKey(ctx, "acme", "ci")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, KeyPrefix) || len(key) < len(KeyPrefix)+50 {
			t.Fatalf("key %q: want %s and 256 random bits", key[:14], KeyPrefix)
		}
		got, err := ts.Authenticate(ctx, key)
		if err != nil || got.Tenant != "acme" || got.ID != info.ID {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		keys, err := ts.Keys(ctx, "acme")
		if err != nil || len(keys) != 1 || keys[0].Name != "ci" {
			t.Fatalf("Keys = %+v, %v", keys, err)
		}

		if err := ts.RevokeKey(ctx, "acme", info.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Authenticate(ctx, key); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("a revoked key = %v", err)
		}
		if err := ts.RevokeKey(ctx, "acme", info.ID); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("revoking twice = %v", err)
		}
	})
}

func TestKeysAreStoredHashed(t *testing.T) {
	kv := storage.NewMemoryKV()
	ts := NewTenants(kv)
	ts.Create(ctx, "acme")
	key, _, err := ts.IssueKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	all, err := kv.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	secret := key[len(KeyPrefix):]
	for _, e := range all {
		if strings.Contains(e.Key, secret) || bytes.Contains(e.Value, []byte(secret)) {
			t.Fatalf("the store holds the key in %s", e.Key)
		}
	}
}

func TestAuthenticateRefusesWhatIsNotAKey(t *testing.T) {
	ts := NewTenants(storage.NewMemoryKV())
	ts.Create(ctx, "acme")
	key, _, _ := ts.IssueKey(ctx, "acme", "")
	for _, bad := range []string{"", "Bearer " + key, key + "x", key[:len(key)-1],
		strings.Repeat("sk-stated-", 100), "sk-other-abc"} {
		if _, err := ts.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%.20q) = %v, want ErrUnauthorized", bad, err)
		}
	}
}

func TestTenantNamesAndLifecycle(t *testing.T) {
	ts := NewTenants(storage.NewMemoryKV())
	for _, bad := range []string{"", "Acme", "a/b", "-a", strings.Repeat("a", 65), "a b"} {
		if _, err := ts.Create(ctx, bad); !errors.Is(err, ErrInvalidTenant) {
			t.Errorf("Create(%q) = %v, want ErrInvalidTenant", bad, err)
		}
	}
	if _, err := ts.Create(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Create(ctx, "acme"); !errors.Is(err, ErrTenantExists) {
		t.Fatalf("a second create = %v", err)
	}
	if _, _, err := ts.IssueKey(ctx, "nobody", ""); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("a key for no tenant = %v", err)
	}
	key, _, _ := ts.IssueKey(ctx, "acme", "")
	if has, err := ts.HasKeys(ctx); !has || err != nil {
		t.Fatalf("HasKeys = %v, %v", has, err)
	}
	if err := ts.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(ctx, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a key of a deleted tenant = %v", err)
	}
	if list, _ := ts.List(ctx); len(list) != 0 {
		t.Fatalf("tenants after delete: %v", list)
	}
}

func TestSameKeyComparesSecrets(t *testing.T) {
	if !SameKey("admin-secret", "admin-secret") || SameKey("admin-secret", "admin-secreT") ||
		SameKey("", "x") {
		t.Fatal("SameKey is wrong")
	}
}
