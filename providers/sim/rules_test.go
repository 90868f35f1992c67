package sim

import (
	"testing"
	"time"
)

func TestRulesMatchModelsExactlyOrByPrefix(t *testing.T) {
	table := DefaultRules()
	tests := []struct {
		name     string
		model    string
		openai   bool
		wantMin  int
		wantStep int
	}{
		{"a dated sonnet 4.5 finds its family", "claude-sonnet-4-5-20250929", false, 1024, 0},
		{"sonnet 4.5 is not taken for sonnet 4", "claude-sonnet-4-5", false, 1024, 0},
		{"haiku 4.5 needs 4096", "claude-haiku-4-5-20251001", false, 4096, 0},
		{"opus 4.5 needs 4096", "claude-opus-4-5-20251101", false, 4096, 0},
		{"opus 4.1 is not taken for opus 4", "claude-opus-4-1-20250805", false, 1024, 0},
		{"an unknown claude model gets anthropic defaults", "claude-future-9", false, 1024, 0},
		{"gpt-4o mini finds gpt-4o", "gpt-4o-mini", true, 1024, 128},
		{"gpt-5 caches from 1024 in steps of 128", "gpt-5", true, 1024, 128},
		{"an unknown model gets openai defaults", "llama-3-70b", true, 1024, 128},
		{"a gpt model on the messages endpoint gets anthropic defaults", "gpt-4o", false,
			1024, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Rules
			if tt.openai {
				r = openaiRulesFor(table, tt.model)
			} else {
				r = anthropicRulesFor(table, tt.model)
				if r.MaxBreakpoints != 4 || r.LookbackBlocks != 20 || r.ShortTTL != 5*time.Minute ||
					r.LongTTL != time.Hour {
					t.Errorf("anthropic rules %+v", r)
				}
			}
			if r.MinCacheTokens != tt.wantMin || r.CacheStep != tt.wantStep {
				t.Errorf("rules %+v, want min %d step %d", r, tt.wantMin, tt.wantStep)
			}
		})
	}
}

func TestTheTableCoversBothFamilies(t *testing.T) {
	table := DefaultRules()
	tests := []struct {
		name    string
		model   string
		check   func(Rules) bool
		explain string
	}{
		{"opus 4.7 needs 2048", "claude-opus-4-7", func(r Rules) bool {
			return r.Family == FamilyAnthropic && r.MinCacheTokens == 2048
		}, "anthropic, min 2048"},
		{"opus 5 needs 512", "claude-opus-5", func(r Rules) bool {
			return r.MinCacheTokens == 512
		}, "min 512"},
		{"anthropic writes cost 1.25x and 2x, reads 0.1x", "claude-haiku-4-5", func(r Rules) bool {
			return r.WriteMultiplier == 1.25 && r.LongWriteMultiplier == 2 &&
				r.ReadMultiplier == 0.1 && r.ReportsWrites
		}, "1.25/2/0.1, writes reported"},
		{"gpt-4o has no extended retention", "gpt-4o-2024-11-20", func(r Rules) bool {
			return r.ExtendedTTL == 0 && !r.ReportsWrites && r.ReadMultiplier == 0.5
		}, "in_memory only, no writes reported"},
		{"gpt-4.1 keeps 24h entries", "gpt-4.1", func(r Rules) bool {
			return r.ExtendedTTL == 24*time.Hour && r.CacheStep == 128 && !r.Breakpoints
		}, "24h retention in steps of 128"},
		{"gpt-5.5 takes only 24h", "gpt-5.5", func(r Rules) bool {
			return r.ExtendedOnly && !r.Breakpoints
		}, "24h only, no breakpoints"},
		{"gpt-5.6 takes breakpoints", "gpt-5.6-luna-2026-08-01", func(r Rules) bool {
			return r.Breakpoints && r.CacheStep == 0 && r.MaxBreakpoints == 4 &&
				r.ShortTTL == 30*time.Minute && r.LongTTL == 12*time.Hour &&
				r.ReportsWrites && r.WriteMultiplier == 1.25
		}, "exact breakpoints, 30m and 12h, writes reported at 1.25x"},
		{"gpt-5-6 spelled with a dash takes breakpoints too", "gpt-5-6-terra", func(r Rules) bool {
			return r.Breakpoints
		}, "breakpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := lookupRules(table, tt.model); !tt.check(r) {
				t.Errorf("%s: %+v, want %s", tt.model, r, tt.explain)
			}
		})
	}
	families := map[Family]int{}
	for _, r := range table {
		families[r.Family]++
	}
	if families[FamilyAnthropic] < 3 || families[FamilyOpenAI] < 3 || len(families) != 2 {
		t.Errorf("the table has %v models by family", families)
	}
}
