package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

func TestPresetsAreVersionedAndIdempotent(t *testing.T) {
	for _, kind := range []string{"memory", "badger"} {
		t.Run("over a "+kind+" store", func(t *testing.T) {
			h := newSavingsHarness(t, rollupPolicy)
			if kind == "badger" {
				b, err := storage.OpenBadger(storage.DefaultBadgerOptions(t.TempDir()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				kv, err := b.KV()
				if err != nil {
					t.Fatal(err)
				}
				h.cfg.Presets = kv
				h.restart()
			}
			checkPresetVersions(t, h.mgr)
		})
	}
}

func checkPresetVersions(t *testing.T, m *Manager) {
	t.Helper()
	p1, err := m.PutPreset(ctx, "t1", Preset{Name: "support", System: "v1 rules",
		Tools: []providers.Tool{{Name: "f", InputSchema: []byte(`{ "type" : "object" }`)}}})
	if err != nil || p1.Version != 1 || p1.Model != "claude-sonnet-4-5" ||
		string(p1.Tools[0].InputSchema) != `{"type":"object"}` {
		t.Fatalf("first put: %+v, %v", p1, err)
	}
	again, err := m.PutPreset(ctx, "t1", Preset{Name: "support", System: "v1 rules",
		Tools: []providers.Tool{{Name: "f", InputSchema: []byte(`{"type":"object"}`)}}})
	if err != nil || again.Version != 1 || again.Digest != p1.Digest {
		t.Fatalf("the same content again: version %d, %v; want version 1", again.Version, err)
	}
	p2, err := m.PutPreset(ctx, "t1", Preset{Name: "support", System: "v2 rules"})
	if err != nil || p2.Version != 2 {
		t.Fatalf("changed content: %+v, %v; want version 2", p2, err)
	}
	for _, tc := range []struct {
		version int
		system  string
	}{{0, "v2 rules"}, {1, "v1 rules"}, {2, "v2 rules"}} {
		got, err := m.GetPreset(ctx, "t1", "support", tc.version)
		if err != nil || got.System != tc.system {
			t.Fatalf("version %d: %q, %v", tc.version, got.System, err)
		}
	}
	if _, err := m.GetPreset(ctx, "t2", "support", 0); !errors.Is(err, ErrPresetNotFound) {
		t.Fatalf("another tenant's preset: %v, want ErrPresetNotFound", err)
	}
	if _, err := m.GetPreset(ctx, "t1", "support", 3); !errors.Is(err, ErrPresetNotFound) {
		t.Fatalf("a version not yet registered: %v", err)
	}
	list, err := m.ListPresets(ctx, "t1")
	if err != nil || len(list) != 1 || list[0].Version != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
}

func TestPresetsRefuseBadNamesAndSettings(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	for _, p := range []Preset{
		{Name: ""}, {Name: "has space"}, {Name: "a/b"},
		{Name: "ok", MaxTokens: 1 << 30},
		{Name: "ok", Tools: []providers.Tool{{Name: "f"}, {Name: "f"}}},
		{Name: "ok", Context: ContextPolicy{RollupHighTokens: 10}},
	} {
		if _, err := h.mgr.PutPreset(ctx, "t1", p); !errors.Is(err, ErrInvalid) {
			t.Fatalf("preset %+v: %v, want ErrInvalid", p, err)
		}
	}
}

func TestConcurrentPutsOfOnePresetMakeOneVersion(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	var wg sync.WaitGroup
	versions := make([]int, 8)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := h.mgr.PutPreset(context.Background(), "t1", Preset{Name: "p", System: "s"})
			if err != nil {
				t.Error(err)
			}
			versions[i] = p.Version
		}()
	}
	wg.Wait()
	for _, v := range versions {
		if v != 1 {
			t.Fatalf("versions %v: want all 1", versions)
		}
	}
}

func TestSessionsOpenByPresetAndShareItsPrefix(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	if _, err := h.mgr.PutPreset(ctx, "t1", Preset{Name: "agent", System: words("sys", 1200),
		Tools: []providers.Tool{{Name: "f"}}, MaxTokens: 321}); err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for i := 0; i < 2; i++ {
		s, rec := h.open(Settings{Preset: "agent"})
		info := s.Info()
		if info.Settings.PresetVersion != 1 || info.Settings.MaxTokens != 321 ||
			len(info.Settings.Tools) != 1 {
			t.Fatalf("settings %+v: want the preset's", info.Settings)
		}
		h.turn(s, rec, fmt.Sprint("u", i), "hello")
		prefixes = append(prefixes, s.prefix)
	}
	reqs := h.prov.answerRequests()
	if prefixes[0] != prefixes[1] || reqs[0].System != reqs[1].System || !reqs[1].Cache.System {
		t.Fatal("two sessions of one preset do not share their prefix and its breakpoint")
	}
	for _, st := range []Settings{
		{Preset: "agent", System: "mine"},
		{Preset: "agent", Tools: []providers.Tool{{Name: "g"}}},
		{PresetVersion: 1},
	} {
		if _, err := h.mgr.Open(ctx, "t1", st); !errors.Is(err, ErrInvalid) {
			t.Fatalf("open %+v: %v, want ErrInvalid", st, err)
		}
	}
	if _, err := h.mgr.Open(ctx, "t1", Settings{Preset: "nope"}); !errors.Is(err,
		ErrPresetNotFound) {
		t.Fatalf("open by an unknown preset: %v", err)
	}
}

func TestSessionsOfAPresetShareOneOpenAIKey(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	h.cfg.Model = "gpt-4.1"
	h.restart()
	for _, name := range []string{"one", "two"} {
		if _, err := h.mgr.PutPreset(ctx, "t1", Preset{Name: name,
			System: name + " " + words("sys", 1200)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"one", "one", "two"} {
		s, rec := h.open(Settings{Preset: name})
		h.turn(s, rec, fmt.Sprint("u", i), "hello")
	}
	reqs := h.prov.answerRequests()
	keys := []string{reqs[0].Cache.Key, reqs[1].Cache.Key, reqs[2].Cache.Key}
	if keys[0] == "" || keys[0] != keys[1] || keys[0] == keys[2] {
		t.Fatalf("keys %q: want one per preset", keys)
	}
	if reqs[0].Cache.System || len(reqs[0].Cache.Messages) > 0 || reqs[0].Cache.Retention != "" {
		t.Fatalf("an OpenAI plan with breakpoints or retention and no pause: %+v",
			reqs[0].Cache)
	}
}
