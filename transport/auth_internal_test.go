package transport

import (
	"net/http"
	"testing"
	"time"
)

func TestTicketsExpireAndAreSingleUse(t *testing.T) {
	tk := newTickets(30 * time.Second)
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		at     time.Duration // after issue
		uses   int
		tenant string
	}{
		{"a fresh ticket opens once", time.Second, 1, "acme"},
		{"just before it expires it still opens", 30*time.Second - time.Nanosecond, 1, "acme"},
		{"at its expiry it opens nothing", 30 * time.Second, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, expires, err := tk.issue("acme", t0)
			if err != nil || !expires.Equal(t0.Add(30*time.Second)) {
				t.Fatalf("issue: %v, expires %v", err, expires)
			}
			for i := 0; i < 2; i++ {
				tenant, ok := tk.redeem(tok, t0.Add(tt.at))
				if want := i < tt.uses; ok != want || ok && tenant != tt.tenant {
					t.Fatalf("use %d: %q, %v; want ok %v", i+1, tenant, ok, want)
				}
			}
		})
	}
	if _, ok := tk.redeem(string(make([]byte, 200)), t0); ok {
		t.Fatal("an over-long ticket opened")
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.8.9.10:80", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"192.168.1.2:443", false},
		{"example.com:80", false},
		{"nonsense", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestBearerReadsTheAuthorizationHeader(t *testing.T) {
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer sk-stated-abc", "sk-stated-abc", true},
		{"bearer  sk-stated-abc ", "sk-stated-abc", true},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tt.header)
		if token, ok := bearer(r); token != tt.token || ok != tt.ok {
			t.Errorf("bearer(%q) = %q, %v", tt.header, token, ok)
		}
	}
}
