package sim

import "testing"

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
				if r.MaxBreakpoints != 4 || r.LookbackBlocks != 20 || !r.TTL5m || !r.TTL1h {
					t.Errorf("anthropic rules %+v", r)
				}
			}
			if r.MinCacheTokens != tt.wantMin || r.CacheStep != tt.wantStep {
				t.Errorf("rules %+v, want min %d step %d", r, tt.wantMin, tt.wantStep)
			}
		})
	}
}
