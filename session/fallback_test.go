package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stated-dev/stated/providers"
)

func TestFallbackModelsAreValidated(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name string
		st   Settings
	}{
		{"more than four", Settings{FallbackModels: []string{"a", "b", "c", "d", "e"}}},
		{"an empty name", Settings{FallbackModels: []string{""}}},
		{"a name over 128 bytes", Settings{FallbackModels: []string{string(make([]byte, 129))}}},
		{"a repeat", Settings{FallbackModels: []string{"a", "a"}}},
		{"the session's own model", Settings{Model: "m1", FallbackModels: []string{"m1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := h.mgr.Open(ctx, "t1", c.st); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestFallbackModelsReachTheProviderRequest(t *testing.T) {
	h := newHarness(t)
	want := []string{"fallback-a", "fallback-b"}
	s, rec := h.open(Settings{FallbackModels: want})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "hello")); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, 1)
	if got := h.prov.lastRequest().Fallback; !reflect.DeepEqual(got, want) {
		t.Fatalf("request fallback %v, want %v", got, want)
	}
}

func TestErrorCodeNamesProviderFailures(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&providers.Error{Type: providers.TypeConnection, Temporary: true},
			"provider_unreachable"},
		{fmt.Errorf("%w: %w", &providers.Error{Type: providers.TypeAttemptTimeout,
			Temporary: true}, context.DeadlineExceeded), "provider_timeout"},
		{&providers.Error{Status: 429, Temporary: true}, "provider_rate_limited"},
		{&providers.Error{Status: 529, Temporary: true}, "provider_unavailable"},
		{&providers.Error{Status: 400}, "provider_error"},
	}
	for _, c := range cases {
		if got := errorCode(c.err); got != c.want {
			t.Errorf("errorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
