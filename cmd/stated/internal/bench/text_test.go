package bench

import (
	"math"
	"strings"
	"testing"
)

func TestTurnTextIsDeterministicProseOfTheSizeAsked(t *testing.T) {
	a := turnText(1, 3, 7, 300)
	if len(a) != 300 || a != turnText(1, 3, 7, 300) {
		t.Fatalf("len %d or not the same twice: %q", len(a), a)
	}
	if a == turnText(1, 3, 8, 300) || a == turnText(1, 4, 7, 300) || a == turnText(2, 3, 7, 300) {
		t.Fatal("other turns, sessions or seeds give the same text")
	}
	if strings.ContainsAny(a, "\"\\\n") || !strings.HasSuffix(a, ".") {
		t.Fatalf("text %q is not plain prose", a)
	}
	if got := turnText(1, 0, 1, 1); len(got) != 1 {
		t.Fatalf("one byte asked, got %q", got)
	}
}

func TestOptionsValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no sessions", func(o *Options) { o.Sessions = 0 }, "--sessions"},
		{"no turns", func(o *Options) { o.Turns = 0 }, "--turns"},
		{"a negative rate", func(o *Options) { o.Rate = -1 }, "--rate"},
		{"a rate that is not a number", func(o *Options) { o.Rate = math.NaN() }, "--rate"},
		{"a turn over the protocol's limit", func(o *Options) { o.TextBytes = 1 << 20 },
			"--text-bytes"},
		{"no connection rate", func(o *Options) { o.ConnectRate = 0 }, "--connect-rate"},
		{"no resume concurrency", func(o *Options) { o.ResumeConcurrency = 0 },
			"--resume-concurrency"},
		{"an http URL", func(o *Options) { o.Server = "http://127.0.0.1:1" }, "--server"},
		{"a zero timeout", func(o *Options) { o.Timeout = 0 }, "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one naming %s", err, tt.want)
			}
		})
	}
	o := DefaultOptions()
	o.Idle, o.Turns = true, 0
	if err := o.Validate(); err != nil {
		t.Fatalf("an idle run needs no turns: %v", err)
	}
}
