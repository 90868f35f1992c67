package finops

import "testing"

func TestMatchRules(t *testing.T) {
	tests := []struct {
		name  string
		rule  matchRule
		model string
		want  bool
	}{
		{"equals matches the whole name", matchRule{Equals: "gpt-4o"}, "gpt-4o", true},
		{"equals refuses a longer name", matchRule{Equals: "gpt-4o"}, "gpt-4o-mini", false},
		{"starts with", matchRule{StartsWith: "claude-3"}, "claude-3-haiku", true},
		{"ends with", matchRule{EndsWith: "-latest"}, "gpt-5-chat-latest", true},
		{"contains", matchRule{Contains: "moderation"}, "omni-moderation-2024", true},
		{"regex", matchRule{Regex: `^o[134]-`}, "o3-mini", true},
		{"regex refuses", matchRule{Regex: `^o[134]-`}, "gpt-o3", false},
		{"or takes any", matchRule{Or: []matchRule{{Equals: "a"}, {Equals: "b"}}}, "b", true},
		{"and needs all", matchRule{And: []matchRule{{StartsWith: "a"}, {EndsWith: "z"}}},
			"abc", false},
		{"and with all", matchRule{And: []matchRule{{StartsWith: "a"}, {EndsWith: "z"}}},
			"abz", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.compile(1); err != nil {
				t.Fatal(err)
			}
			if got := tt.rule.matches(tt.model); got != tt.want {
				t.Fatalf("matches(%q) = %v, want %v", tt.model, got, tt.want)
			}
		})
	}
}
