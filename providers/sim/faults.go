package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FaultKind names a misbehaviour the simulator can inject into a request.
type FaultKind string

// The faults. Events are counted from the first event of a stream; a
// non-streamed answer is one body.
const (
	// FaultNone injects nothing; as a request header it turns off the
	// configured faults for that request.
	FaultNone FaultKind = "none"
	// FaultStatus answers an HTTP error status in the provider's error format
	// instead of the answer: 429 and 529 (503 on the OpenAI endpoints, which do
	// not use 529) carry a retry-after header. The cache is not touched.
	FaultStatus FaultKind = "status"
	// FaultCut drops the connection after After events, without the stream's
	// end; a non-streamed body is dropped halfway.
	FaultCut FaultKind = "cut"
	// FaultStall sends nothing more after After events until the client gives
	// up (or Server.Close); a non-streamed request gets no answer at all.
	FaultStall FaultKind = "stall"
	// FaultDrip sends every event Interval after the one before; a
	// non-streamed body is sent in pieces of 64 bytes, Interval apart.
	FaultDrip FaultKind = "drip"
	// FaultErrorEvent sends the provider's error event after After events and
	// ends the stream; a non-streamed request gets a 500 instead.
	FaultErrorEvent FaultKind = "error-event"
	// FaultEmpty answers with no text and no tool calls.
	FaultEmpty FaultKind = "empty"
)

// Bounds of fault parameters.
const (
	maxFaultAfter    = 1 << 20
	maxFaultInterval = time.Minute
	maxRetryAfter    = time.Hour
	dripPieceBytes   = 64
)

// Fault is one misbehaviour and its parameters. Its text form, read by
// ParseFault and written by String, is the kind, then "=" and its value, then
// options after ";": "status=429;retry-after=2s", "status=529", "cut=3",
// "stall=2", "drip=50ms", "error-event=2", "empty", "none".
type Fault struct {
	Kind FaultKind
	// Status is FaultStatus's HTTP status, 400 to 599.
	Status int
	// RetryAfter is the retry-after FaultStatus sends with 429, 503 and 529.
	// Zero: one second.
	RetryAfter time.Duration
	// After is how many events FaultCut, FaultStall and FaultErrorEvent let
	// through first.
	After int
	// Interval is FaultDrip's pause before each event.
	Interval time.Duration
}

// FaultRule injects Fault into a fraction of requests. Its text form is the
// fault's, then "@" and the rate: "status=500@0.05".
type FaultRule struct {
	Fault Fault
	// Rate is the fraction of requests, from 0 to 1. The rates of all rules
	// together are at most 1; one draw per request picks at most one rule.
	Rate float64
}

// String returns the fault's text form.
func (f Fault) String() string {
	switch f.Kind {
	case FaultStatus:
		s := "status=" + strconv.Itoa(f.Status)
		if f.RetryAfter > 0 {
			s += ";retry-after=" + f.RetryAfter.String()
		}
		return s
	case FaultCut, FaultStall, FaultErrorEvent:
		return string(f.Kind) + "=" + strconv.Itoa(f.After)
	case FaultDrip:
		return "drip=" + f.Interval.String()
	case "":
		return ""
	}
	return string(f.Kind)
}

// ParseFault reads a fault's text form (see Fault). It returns an error wrapping
// ErrBadFault that says what is wrong.
func ParseFault(text string) (Fault, error) {
	head, opts, _ := strings.Cut(strings.TrimSpace(text), ";")
	kind, value, hasValue := strings.Cut(strings.TrimSpace(head), "=")
	f := Fault{Kind: FaultKind(strings.TrimSpace(kind))}
	value = strings.TrimSpace(value)
	var err error
	switch f.Kind {
	case FaultStatus:
		f.Status, err = strconv.Atoi(value)
		if err == nil && (f.Status < 400 || f.Status > 599) {
			err = fmt.Errorf("status %d is not between 400 and 599", f.Status)
		}
	case FaultCut, FaultStall, FaultErrorEvent:
		f.After, err = strconv.Atoi(value)
		if err == nil && (f.After < 0 || f.After > maxFaultAfter) {
			err = fmt.Errorf("%d events is not between 0 and %d", f.After, maxFaultAfter)
		}
	case FaultDrip:
		f.Interval, err = parseBoundedDuration(value, maxFaultInterval)
	case FaultEmpty, FaultNone:
		if hasValue {
			err = fmt.Errorf("%s takes no value", f.Kind)
		}
	default:
		err = fmt.Errorf("unknown fault %q: want status, cut, stall, drip, error-event, "+
			"empty or none", kind)
	}
	if err == nil && opts != "" {
		err = f.parseOptions(opts)
	}
	if err != nil {
		return Fault{}, fmt.Errorf("%w: %q: %v", ErrBadFault, text, err)
	}
	return f, nil
}

// parseOptions reads the options after the first ";": only retry-after, and
// only for status faults.
func (f *Fault) parseOptions(opts string) error {
	for _, opt := range strings.Split(opts, ";") {
		key, value, _ := strings.Cut(strings.TrimSpace(opt), "=")
		if strings.TrimSpace(key) != "retry-after" || f.Kind != FaultStatus {
			return fmt.Errorf("unknown option %q", opt)
		}
		d, err := parseBoundedDuration(strings.TrimSpace(value), maxRetryAfter)
		if err != nil {
			return err
		}
		f.RetryAfter = d
	}
	return nil
}

// parseBoundedDuration reads a duration ("250ms") or whole seconds ("2"),
// between zero and limit.
func parseBoundedDuration(s string, limit time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, fmt.Errorf("%q is not a duration such as 250ms or 2s", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > limit {
		return 0, fmt.Errorf("%s is not between 0 and %s", d, limit)
	}
	return d, nil
}

// ParseFaultRule reads a rule's text form, "fault@rate" (see FaultRule). It
// returns an error wrapping ErrBadFault.
func ParseFaultRule(text string) (FaultRule, error) {
	spec, rate, ok := strings.Cut(text, "@")
	if !ok {
		return FaultRule{}, fmt.Errorf("%w: %q: want fault@rate, as in status=500@0.05",
			ErrBadFault, text)
	}
	f, err := ParseFault(spec)
	if err != nil {
		return FaultRule{}, err
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
		return FaultRule{}, fmt.Errorf("%w: %q: the rate must be a number from 0 to 1",
			ErrBadFault, text)
	}
	return FaultRule{Fault: f, Rate: r}, nil
}

// String returns the rule's text form.
func (r FaultRule) String() string {
	return r.Fault.String() + "@" + strconv.FormatFloat(r.Rate, 'g', -1, 64)
}

// faultPicker draws the fault of each request from the configured rules. The
// n-th draw depends only on the seed and n, so a seeded simulator injects the
// same faults into the same sequence of requests.
type faultPicker struct {
	rules []FaultRule
	seed  uint64
	n     atomic.Uint64
}

func newFaultPicker(rules []FaultRule, seed uint64) *faultPicker {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &faultPicker{rules: rules, seed: seed}
}

// pick returns the fault of the next request, or the zero Fault.
func (p *faultPicker) pick() Fault {
	if len(p.rules) == 0 {
		return Fault{}
	}
	u := unitFloat(splitmix(p.seed + p.n.Add(1)*0x9e3779b97f4a7c15))
	sum := 0.0
	for _, r := range p.rules {
		sum += r.Rate
		if u < sum {
			return r.Fault
		}
	}
	return Fault{}
}

// splitmix is the SplitMix64 finalizer: a well-mixed 64-bit value from x.
func splitmix(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitFloat maps x to [0, 1).
func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// faultHeader is the request header that sets a request's fault, overriding
// the configured rules.
const faultHeader = "x-sim-fault"
