package sim

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Fault
		bad  bool
	}{
		{"a status with its retry-after", "status=429;retry-after=2s",
			Fault{Kind: FaultStatus, Status: 429, RetryAfter: 2 * time.Second}, false},
		{"a retry-after in whole seconds", "status=529; retry-after=3",
			Fault{Kind: FaultStatus, Status: 529, RetryAfter: 3 * time.Second}, false},
		{"a cut after three events", "cut=3", Fault{Kind: FaultCut, After: 3}, false},
		{"a stall at once", "stall=0", Fault{Kind: FaultStall}, false},
		{"a drip", "drip=20ms", Fault{Kind: FaultDrip, Interval: 20 * time.Millisecond}, false},
		{"an error event", "error-event=2", Fault{Kind: FaultErrorEvent, After: 2}, false},
		{"an empty answer", "empty", Fault{Kind: FaultEmpty}, false},
		{"no fault", "none", Fault{Kind: FaultNone}, false},
		{"a status under 400 is refused", "status=302", Fault{}, true},
		{"a status that is not a number is refused", "status=teapot", Fault{}, true},
		{"a negative count is refused", "cut=-1", Fault{}, true},
		{"a drip of over a minute is refused", "drip=2m", Fault{}, true},
		{"retry-after on a cut is refused", "cut=1;retry-after=1", Fault{}, true},
		{"an unknown fault is refused", "explode", Fault{}, true},
		{"empty takes no value", "empty=1", Fault{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFault(tt.text)
			if tt.bad {
				if !errors.Is(err, ErrBadFault) {
					t.Fatalf("ParseFault(%q) = %+v, %v; want ErrBadFault", tt.text, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseFault(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
			}
		})
	}
}

func TestParseFaultRule(t *testing.T) {
	r, err := ParseFaultRule("status=500@0.25")
	if err != nil || r.Rate != 0.25 || r.Fault.Status != 500 || r.String() != "status=500@0.25" {
		t.Fatalf("rule %+v, %v", r, err)
	}
	for _, bad := range []string{"status=500", "status=500@1.5", "status=500@-0.1",
		"status=500@NaN", "cut=x@0.1"} {
		if _, err := ParseFaultRule(bad); !errors.Is(err, ErrBadFault) {
			t.Errorf("ParseFaultRule(%q): %v, want ErrBadFault", bad, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	rule := func(s string) FaultRule {
		r, err := ParseFaultRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"the zero options are valid", Options{}, nil},
		{"rates that add up to one are valid", Options{Faults: []FaultRule{
			rule("status=500@0.5"), rule("cut=1@0.5")}}, nil},
		{"rates over one are refused", Options{Faults: []FaultRule{
			rule("status=500@0.6"), rule("cut=1@0.5")}}, ErrBadFault},
		{"a rule without a kind is refused", Options{Faults: []FaultRule{{Rate: 0.1}}},
			ErrBadFault},
		{"a status out of range is refused", Options{Faults: []FaultRule{
			{Fault: Fault{Kind: FaultStatus, Status: 200}, Rate: 0.1}}}, ErrBadFault},
		{"a negative latency is refused", Options{Latency: Latency{FirstToken: -1}},
			ErrBadOptions},
		{"a latency over ten minutes is refused",
			Options{Latency: Latency{PerThousandUncached: time.Hour}}, ErrBadOptions},
		{"a negative rate is refused", Options{Latency: Latency{TokensPerSecond: -1}},
			ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

// statuses sends n chat requests and returns the status of each.
func statuses(t *testing.T, opts Options, n int) []int {
	t.Helper()
	srv := startServer(t, opts)
	out := make([]int, n)
	for i := range out {
		resp, _ := post(t, srv, chatPath, openaiHeaders("k"),
			chatReq(gpt, chatMsg("user", "Hi.")))
		out[i] = resp.StatusCode
	}
	return out
}

func TestSeededFaultsRepeat(t *testing.T) {
	rules := []FaultRule{{Fault: Fault{Kind: FaultStatus, Status: 500}, Rate: 0.3},
		{Fault: Fault{Kind: FaultStatus, Status: 429}, Rate: 0.2}}
	a := statuses(t, Options{Faults: rules, FaultSeed: 7}, 60)
	b := statuses(t, Options{Faults: rules, FaultSeed: 7}, 60)
	c := statuses(t, Options{Faults: rules, FaultSeed: 8}, 60)
	if !slices.Equal(a, b) {
		t.Errorf("the same seed gave %v then %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same statuses %v", a)
	}
	count := map[int]int{}
	for _, s := range a {
		count[s]++
	}
	if count[500] < 6 || count[429] < 3 || count[200] < 15 {
		t.Errorf("statuses %v: far from 30%% 500, 20%% 429, 50%% 200", count)
	}
}

func TestFaultHeader(t *testing.T) {
	always := []FaultRule{{Fault: Fault{Kind: FaultStatus, Status: 500}, Rate: 1}}
	tests := []struct {
		name   string
		opts   Options
		header string
		status int
	}{
		{"the header injects a fault", Options{}, "status=418", 418},
		{"none turns the configured faults off", Options{Faults: always}, "none", 200},
		{"the header wins over the configured faults", Options{Faults: always},
			"status=503", 503},
		{"a bad header is a bad request", Options{}, "status=99", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, tt.opts)
			h := openaiHeaders("k")
			h[faultHeader] = tt.header
			resp, body := post(t, srv, chatPath, h, chatReq(gpt, chatMsg("user", "Hi.")))
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}
}

func TestStatusFaultsSpeakEachProvidersFormat(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		headers    map[string]string
		req        map[string]any
		fault      string
		status     int
		body       string
		retryAfter string
		retryMS    string
	}{
		{"anthropic 529", messagesPath, anthropicHeaders("k"),
			messagesReq(sonnet, nil, msg("user", text("Hi."))), "status=529", 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			"1", ""},
		{"anthropic 429 with a fractional retry-after", messagesPath, anthropicHeaders("k"),
			messagesReq(sonnet, nil, msg("user", text("Hi."))),
			"status=429;retry-after=1500ms", 429, `"type":"rate_limit_error"`, "2", "1500"},
		{"openai 529 becomes 503", chatPath, openaiHeaders("k"),
			chatReq(gpt, chatMsg("user", "Hi.")), "status=529", 503,
			`{"error":{"message":"The engine is currently overloaded, please try again ` +
				`later","type":"server_error","param":null,"code":null}}`, "1", ""},
		{"openai 500 on responses", responsesPath, openaiHeaders("k"),
			map[string]any{"model": gpt, "input": "Hi."}, "status=500", 500,
			`"type":"server_error"`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			tt.headers[faultHeader] = tt.fault
			resp, body := post(t, srv, tt.path, tt.headers, tt.req)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.body) {
				t.Errorf("%d %s, want %d with %s", resp.StatusCode, body, tt.status, tt.body)
			}
			if got := resp.Header.Get("retry-after"); got != tt.retryAfter {
				t.Errorf("retry-after %q, want %q", got, tt.retryAfter)
			}
			if got := resp.Header.Get("retry-after-ms"); got != tt.retryMS {
				t.Errorf("retry-after-ms %q, want %q", got, tt.retryMS)
			}
		})
	}
}

func TestAStatusFaultLeavesTheCacheAlone(t *testing.T) {
	srv := startServer(t, Options{})
	req := messagesReq(sonnet, []map[string]any{marked(text(longText(1500)))},
		msg("user", text("Hi.")))
	h := anthropicHeaders("k")
	h[faultHeader] = "status=429"
	if resp, _ := post(t, srv, messagesPath, h, req); resp.StatusCode != 429 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	m := sendMessages(t, srv, "k", req)
	if m.Usage.CacheReadInputTokens != 0 || m.Usage.CacheCreationInputTokens == 0 {
		t.Errorf("after a 429 the first real request read %d and wrote %d",
			m.Usage.CacheReadInputTokens, m.Usage.CacheCreationInputTokens)
	}
}

func TestNonStreamedFaults(t *testing.T) {
	req := chatReq(gpt, chatMsg("user", "Hi."))
	t.Run("a cut drops the body halfway", func(t *testing.T) {
		srv := startServer(t, Options{})
		h := openaiHeaders("k")
		h[faultHeader] = "cut=0"
		resp, body, err := postRaw(t, srv, chatPath, h, req)
		if err == nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("status %d, %d bytes, %v: want a body cut short", resp.StatusCode,
				len(body), err)
		}
	})
	t.Run("a drip sends the whole body slowly", func(t *testing.T) {
		srv := startServer(t, Options{})
		whole := sendChat(t, srv, "k", req)
		h := openaiHeaders("k")
		h[faultHeader] = "drip=5ms"
		start := time.Now()
		resp, body := post(t, srv, chatPath, h, req)
		pieces := (len(body) + dripPieceBytes - 1) / dripPieceBytes
		if resp.StatusCode != 200 || !strings.Contains(string(body),
			*whole.Choices[0].Message.Content) {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if took := time.Since(start); took < time.Duration(pieces)*5*time.Millisecond {
			t.Errorf("%d pieces came in %s, faster than one per 5ms", pieces, took)
		}
	})
	t.Run("an error event is a 500", func(t *testing.T) {
		srv := startServer(t, Options{})
		h := openaiHeaders("k")
		h[faultHeader] = "error-event=0"
		if resp, body := post(t, srv, chatPath, h, req); resp.StatusCode != 500 {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
}
