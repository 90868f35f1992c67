package transport_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

func TestAuthOnRefusesHandshakesWithoutAValidKey(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	key := n.tenantKey("acme")
	tests := []struct {
		name   string
		key    string
		status int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"a key that was never issued", finops.KeyPrefix + strings.Repeat("a", 52),
			http.StatusUnauthorized},
		{"something that is not a key", "hunter2", http.StatusUnauthorized},
		{"the admin key opens no sessions", testAdminKey, http.StatusForbidden},
		{"a tenant's key", key, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, status := n.dial(tt.key, ""); status != tt.status {
				t.Fatalf("handshake status %d, want %d", status, tt.status)
			}
		})
	}

	c := n.mustDial(key)
	sess := c.open()
	if owner, _ := n.mgr.Owner(t.Context(), sess.SessionID); owner != "acme" {
		t.Fatalf("the session belongs to %q, want the key's tenant acme", owner)
	}
	// Revoked, the key opens nothing more.
	keys, _ := n.tenants.Keys(t.Context(), "acme")
	for _, k := range keys {
		n.tenants.RevokeKey(t.Context(), "acme", k.ID)
	}
	if _, status := n.dial(key, ""); status != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %d", status)
	}
	if status, _ := n.do("GET", "/v1/usage", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/usage without a key: %d", status)
	}
}

func TestAuthOffEveryClientIsTheDefaultTenant(t *testing.T) {
	n := startFinNode(t, finOpts{})
	c := n.mustDial("") // no key needed
	sess := c.open()
	if owner, _ := n.mgr.Owner(t.Context(), sess.SessionID); owner != "default" {
		t.Fatalf("owner %q, want default", owner)
	}
	// A tenant's key changes nothing: it is not asked for.
	other := n.mustDial(n.tenantKey("acme"))
	other.send(`{"type":"resume","session_id":"` + sess.SessionID + `","epoch":1}`)
	if f := other.until(wire.TypeSession); f.SessionID != sess.SessionID {
		t.Fatalf("resume: %+v", f)
	}
}

func TestTicketsOpenOneWebSocketEach(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	key := n.tenantKey("acme")
	if status, _ := n.do("POST", "/v1/tickets", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("a ticket without a key: %d", status)
	}
	status, body := n.do("POST", "/v1/tickets", key, "")
	var tk struct {
		Ticket    string `json:"ticket"`
		ExpiresAt string `json:"expires_at"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &tk) != nil || tk.Ticket == "" {
		t.Fatalf("POST /v1/tickets: %d %s", status, body)
	}
	if exp, err := time.Parse(time.RFC3339Nano, tk.ExpiresAt); err != nil ||
		time.Until(exp) > 31*time.Second {
		t.Fatalf("expires_at %q: want within the 30s lifetime", tk.ExpiresAt)
	}

	c, status := n.dial("", "?ticket="+tk.Ticket)
	if c == nil {
		t.Fatalf("the ticket was refused: %d", status)
	}
	if owner := c.open(); owner.SessionID == "" {
		t.Fatal("no session")
	}
	if _, status := n.dial("", "?ticket="+tk.Ticket); status != http.StatusUnauthorized {
		t.Fatalf("a used ticket: %d, want 401", status)
	}
	if _, status := n.dial("", "?ticket=tk_forged"); status != http.StatusUnauthorized {
		t.Fatalf("a forged ticket: %d, want 401", status)
	}
	if status, _ := n.do("POST", "/v1/tickets", testAdminKey, ""); status !=
		http.StatusForbidden {
		t.Fatalf("a ticket for the admin: %d, want 403", status)
	}
}

func TestATenantCannotSeeAnotherTenantsSession(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	acme, beta := n.tenantKey("acme"), n.tenantKey("beta")
	c := n.mustDial(acme)
	id := c.open().SessionID
	c.send(`{"type":"turn","turn_id":"t1","text":"hello"}`)
	c.answer()
	n.waitCalls(id, acme, 1)

	other := n.mustDial(beta)
	for _, sid := range []string{id, "nosuchsessionatall00000000"} {
		other.send(`{"type":"resume","session_id":"` + sid + `","epoch":1}`)
		if f := other.until(wire.TypeError); f.Code != wire.CodeSessionNotFound {
			t.Fatalf("resume of %s by another tenant: %+v", sid, f)
		}
	}
	// Over HTTP the answers for another's session and for none are the same bytes.
	var bodies []string
	for _, sid := range []string{id, "nosuchsessionatall00000000"} {
		for _, req := range [][2]string{{"GET", "/v1/sessions/" + sid + "/usage"},
			{"POST", "/v1/sessions/" + sid + "/resume_turns"}} {
			status, body := n.do(req[0], req[1], beta, "")
			if status != http.StatusNotFound {
				t.Fatalf("%s %s by another tenant: %d %s", req[0], req[1], status, body)
			}
			bodies = append(bodies, string(body))
		}
	}
	if bodies[0] != bodies[2] || bodies[1] != bodies[3] {
		t.Fatalf("another tenant's session answers differently from none: %q", bodies)
	}
	if r := n.usage("/v1/usage", beta); r.Total.Calls != 0 {
		t.Fatalf("beta's usage shows %d calls of acme's", r.Total.Calls)
	}
	if status, _ := n.do("GET", "/v1/usage?tenant=acme", beta, ""); status !=
		http.StatusForbidden {
		t.Fatalf("beta asking for acme's usage: %d", status)
	}
	if r := n.usage("/v1/sessions/"+id+"/usage", testAdminKey); r.Total.Calls != 1 {
		t.Fatalf("the admin sees %d calls of the session, want 1", r.Total.Calls)
	}
}

func TestEightParallelTurnsAgainstABudgetWithRoomForTwoAdmitTwo(t *testing.T) {
	simSrv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(simSrv.Close)
	gate := &gateProvider{Provider: anthropic.New(anthropic.Config{BaseURL: simSrv.URL,
		APIKey: "test"}), gate: make(chan struct{})}
	n := startFinNode(t, finOpts{auth: true, provider: gate, maxTokens: 1000})
	key := n.tenantKey("acme")

	// A turn's worst case: its prompt (a few tokens) at the 1-hour cache write rate
	// of 6 USD per million, and 1000 output tokens at 15: a little over 0.015.
	status, body := n.do("PUT", "/v1/tenants/acme/budgets", testAdminKey,
		`{"limits":[{"scope":"tenant","window":"day","hard_usd":0.04}]}`)
	if status != http.StatusOK {
		t.Fatalf("PUT budgets: %d %s", status, body)
	}
	conns := make([]*rawConn, 8)
	for i := range conns {
		conns[i] = n.mustDial(key)
		conns[i].open()
	}

	results := make([]string, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.send(`{"type":"turn","turn_id":"t1","text":"what does the budget allow"}`)
			results[i] = firstOutcome(c)
		}()
	}
	wg.Wait()
	close(gate.gate)

	admitted, refused := 0, 0
	for _, r := range results {
		switch r {
		case "answering":
			admitted++
		case wire.CodeBudgetExceeded:
			refused++
		default:
			t.Fatalf("outcome %q", r)
		}
	}
	if admitted != 2 || refused != 6 {
		t.Fatalf("admitted %d and refused %d, want 2 and 6", admitted, refused)
	}
	status, body = n.do("GET", "/v1/tenants/acme/budgets", testAdminKey, "")
	if status != http.StatusOK || !strings.Contains(string(body), `"reserved_usd"`) {
		t.Fatalf("GET budgets: %d %s", status, body)
	}
}

// firstOutcome reads frames after a turn until the answer is known to run
// ("answering": the ack came and no error before the answer started) or an error
// frame came (its code). The answer is held by the gate, so an ack and then
// silence for a moment means it was admitted.
func firstOutcome(c *rawConn) string {
	c.until(wire.TypeAck)
	c.ws.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return "answering"
	}
	var f wire.ServerFrame
	json.Unmarshal(data, &f)
	if f.Type == wire.TypeError {
		return f.Code
	}
	if f.Type == wire.TypeEvent && f.Event.ErrorCode != "" {
		// The failed answer event may come before the error frame.
		return f.Event.ErrorCode
	}
	return "answering"
}

func TestADisconnectAfterThreeDeltasIsBilled(t *testing.T) {
	simSrv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(simSrv.Close)
	slow := &slowProvider{Provider: anthropic.New(anthropic.Config{BaseURL: simSrv.URL,
		APIKey: "test"})}
	slow.setDelay(20 * time.Millisecond)
	n := startFinNode(t, finOpts{provider: slow})

	c := n.mustDial("")
	id := c.open().SessionID
	c.send(`{"type":"turn","turn_id":"t1","text":"tell me about the ledger"}`)
	for deltas := 0; deltas < 3; {
		if c.read().Type == wire.TypeDelta {
			deltas++
		}
	}
	c.ws.Close() // the client hangs up mid-answer

	r := n.waitCalls(id, "", 1)
	again := n.mustDial("")
	again.send(`{"type":"resume","session_id":"` + id + `","epoch":1}`)
	ans := again.answer()
	if ans.Status != "complete" || ans.Usage == nil || r.Total.OutputTokens !=
		int64(ans.Usage.OutputTokens) || r.Total.CostUSD != ans.CostUSD || ans.CostUSD == 0 {
		t.Fatalf("booked %+v for answer %+v: want the whole answer billed", r.Total, ans)
	}
	if strings.Count(ans.Text, " ") < 4 {
		t.Fatalf("the answer %q is too short to have been cut after three deltas", ans.Text)
	}
}

func TestUsageEndpointsInJSONAndCSV(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	acme, beta := n.tenantKey("acme"), n.tenantKey("beta")
	ids := map[string]string{}
	for _, key := range []string{acme, acme, beta} {
		c := n.mustDial(key)
		id := c.open().SessionID
		c.send(`{"type":"turn","turn_id":"t1","text":"hello there"}`)
		c.answer()
		n.waitCalls(id, key, 1)
		ids[id] = key
	}

	r := n.usage("/v1/usage?group_by=session", acme)
	if r.Total.Calls != 2 || len(r.Groups) != 2 || r.Total.CostUSD <= 0 ||
		r.Total.NaiveCostUSD <= 0 || r.Total.InputTokens+r.Total.CacheWrite5mTokens == 0 {
		t.Fatalf("acme's usage by session: %+v", r)
	}
	for _, g := range r.Groups {
		if ids[g.Key] != acme {
			t.Fatalf("acme's report has group %q", g.Key)
		}
	}
	if r := n.usage("/v1/usage?group_by=tenant", testAdminKey); len(r.Groups) != 2 ||
		r.Total.Calls != 3 {
		t.Fatalf("the admin's usage by tenant: %+v", r)
	}
	if r := n.usage("/v1/usage?tenant=beta&group_by=model", testAdminKey); r.Total.Calls != 1 ||
		len(r.Groups) != 1 || r.Groups[0].Key != "claude-sonnet-4-5" {
		t.Fatalf("the admin's usage of beta by model: %+v", r)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if r := n.usage("/v1/usage?from="+today+"&to="+today+"&group_by=day", acme); len(
		r.Groups) != 1 || r.Groups[0].Key != today || r.Total.Calls != 2 {
		t.Fatalf("acme's usage today by day: %+v", r)
	}
	if r := n.usage("/v1/usage?to=2000-01-01", acme); r.Total.Calls != 0 {
		t.Fatalf("usage before 2000: %+v", r.Total)
	}

	for _, how := range [][2]string{{"/v1/usage?group_by=model&format=csv", ""},
		{"/v1/usage?group_by=model", "text/csv"}} {
		status, body := n.do("GET", how[0], acme, "", "Accept", how[1])
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if status != http.StatusOK || err != nil || len(rows) != 3 ||
			rows[0][1] != "key" || rows[1][1] != "claude-sonnet-4-5" || rows[2][0] != "total" {
			t.Fatalf("CSV by %v: %d %v %q", how, status, err, body)
		}
	}
	for _, bad := range []string{"/v1/usage?group_by=week", "/v1/usage?from=yesterday",
		"/v1/usage?from=2026-02-02&to=2026-01-01"} {
		if status, body := n.do("GET", bad, acme, ""); status != http.StatusBadRequest {
			t.Fatalf("GET %s: %d %s", bad, status, body)
		}
	}
}

func TestMetricsParseAndCountTheLedger(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	key := n.tenantKey("acme")
	c := n.mustDial(key)
	id := c.open().SessionID
	c.send(`{"type":"turn","turn_id":"t1","text":"hello"}`)
	c.answer()
	n.waitCalls(id, key, 1)

	if status, _ := n.do("GET", "/metrics", key, ""); status != http.StatusForbidden {
		t.Fatalf("metrics for a tenant's key: %d, want 403", status)
	}
	// The ledger's observers count an entry just after it is booked, so the usage
	// report may show the call a moment before the metrics do.
	var samples map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		status, body := n.do("GET", "/metrics", testAdminKey, "")
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d", status)
		}
		samples = parseExposition(t, string(body))
		calls := `stated_calls_total{tenant="acme",model="claude-sonnet-4-5",status="complete"}`
		if samples[calls] > 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range []string{
		`stated_tokens_total{tenant="acme",model="claude-sonnet-4-5",category="output"}`,
		`stated_cost_usd_total{tenant="acme",model="claude-sonnet-4-5"}`,
		`stated_naive_cost_usd_total{tenant="acme",model="claude-sonnet-4-5"}`,
		`stated_calls_total{tenant="acme",model="claude-sonnet-4-5",status="complete"}`,
		`stated_provider_latency_seconds_count{model="claude-sonnet-4-5"}`,
		`stated_time_to_first_token_seconds_count{model="claude-sonnet-4-5"}`,
	} {
		if samples[name] <= 0 {
			t.Errorf("%s = %g, want above 0", name, samples[name])
		}
	}
	for _, name := range []string{"stated_active_sessions", "stated_connections",
		`stated_cache_read_share{tenant="acme",model="claude-sonnet-4-5"}`,
		`stated_savings_usd_total{tenant="acme",model="claude-sonnet-4-5",lever="caching"}`} {
		if _, ok := samples[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}

// parseExposition parses the Prometheus text format strictly: every line a
// comment (# HELP or # TYPE, the TYPE before its samples) or a sample
// `name{labels} value`, histogram buckets cumulative and ending with +Inf equal to
// the count.
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	samples := map[string]float64{}
	typed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "# ") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || (f[1] != "HELP" && f[1] != "TYPE") {
				t.Fatalf("line %d: bad comment %q", i+1, line)
			}
			if f[1] == "TYPE" {
				typed[f[2]] = f[3]
			}
			continue
		}
		name, value, ok := cutLast(line, " ")
		var v float64
		if _, err := fmt.Sscan(value, &v); !ok || (err != nil && value != "+Inf") {
			t.Fatalf("line %d: bad sample %q", i+1, line)
		}
		base, _, _ := strings.Cut(name, "{")
		if !validMetricName(base) || strings.Contains(name, "{") && !strings.HasSuffix(name,
			"}") {
			t.Fatalf("line %d: bad name %q", i+1, name)
		}
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(base, "_bucket"),
			"_sum"), "_count")
		if typed[base] == "" && typed[family] == "" {
			t.Fatalf("line %d: %s has no TYPE before it", i+1, base)
		}
		if _, dup := samples[name]; dup {
			t.Fatalf("line %d: %s repeats", i+1, name)
		}
		samples[name] = v
	}
	return samples
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

func validMetricName(s string) bool {
	for i, r := range s {
		ok := r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}

func TestTheGuardPausesAndTheClientOrAnAdminResumes(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true,
		guard: session.Guard{MaxTurns: 1, Window: time.Hour, RepeatRun: -1}})
	key := n.tenantKey("acme")
	c := n.mustDial(key)
	id := c.open().SessionID
	c.send(`{"type":"turn","turn_id":"t1","text":"first"}`)
	c.answer()

	c.send(`{"type":"turn","turn_id":"t2","text":"second"}`)
	c.until(wire.TypeAck)
	paused := c.until(wire.TypeEvent)
	if paused.Event.Kind != "paused" || paused.Event.Guard == nil ||
		paused.Event.Guard.Reason != "turn_rate" {
		t.Fatalf("after the second turn: %+v, want a paused event", paused.Event)
	}
	if f := c.until(wire.TypeError); f.Code != wire.CodeSessionPaused || f.TurnID != "t2" {
		t.Fatalf("error %+v, want session_paused for t2", f)
	}
	c.send(`{"type":"turn","turn_id":"t3","text":"third"}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeSessionPaused {
		t.Fatalf("a turn while paused: %+v", f)
	}

	c.send(`{"type":"resume_turns"}`)
	if f := c.until(wire.TypeEvent); f.Event.Kind != "resumed" || f.Event.Guard.By != "client" {
		t.Fatalf("after resume_turns: %+v", f.Event)
	}
	c.send(`{"type":"retry"}`)
	c.answer()
	c.send(`{"type":"turn","turn_id":"t4","text":"fourth"}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeSessionPaused {
		t.Fatalf("the guard after the resume: %+v", f)
	}
	status, body := n.do("POST", "/v1/sessions/"+id+"/resume_turns", testAdminKey, "")
	if status != http.StatusOK {
		t.Fatalf("admin resume: %d %s", status, body)
	}
	if f := c.until(wire.TypeEvent); f.Event.Kind != "resumed" || f.Event.Guard.By != "admin" {
		t.Fatalf("after the admin's resume: %+v", f.Event)
	}
}

func TestAdminManagesTenantsKeysAndBudgets(t *testing.T) {
	n := startFinNode(t, finOpts{auth: true})
	steps := []struct {
		method, path, key, body string
		status                  int
	}{
		{"POST", "/v1/tenants", "", `{"name":"acme"}`, http.StatusUnauthorized},
		{"POST", "/v1/tenants", testAdminKey, `{"name":"acme"}`, http.StatusCreated},
		{"POST", "/v1/tenants", testAdminKey, `{"name":"acme"}`, http.StatusConflict},
		{"POST", "/v1/tenants", testAdminKey, `{"name":"Not Valid"}`, http.StatusBadRequest},
		{"POST", "/v1/tenants", testAdminKey, `{"name":"x","extra":1}`, http.StatusBadRequest},
		{"GET", "/v1/tenants", testAdminKey, "", http.StatusOK},
		{"POST", "/v1/tenants/nobody/keys", testAdminKey, `{}`, http.StatusNotFound},
		{"PUT", "/v1/tenants/acme/budgets", testAdminKey,
			`{"limits":[{"scope":"tenant","window":"week","hard_usd":1}]}`,
			http.StatusBadRequest},
		{"PUT", "/v1/tenants/acme/budgets", testAdminKey,
			`{"limits":[{"scope":"tenant","window":"month","hard_usd":10,"soft_usd":8}]}`,
			http.StatusOK},
		{"DELETE", "/v1/tenants/acme/keys/key_000000000000", testAdminKey, "",
			http.StatusNotFound},
	}
	for _, s := range steps {
		if status, body := n.do(s.method, s.path, s.key, s.body); status != s.status {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.path, status, body, s.status)
		}
	}
	status, body := n.do("POST", "/v1/tenants/acme/keys", testAdminKey, `{"name":"ci"}`)
	var issued struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &issued) != nil {
		t.Fatalf("issue key: %d %s", status, body)
	}
	if status, body := n.do("GET", "/v1/tenants", issued.Key, ""); status != http.StatusForbidden {
		t.Fatalf("a tenant's key on the admin API: %d %s", status, body)
	}
	n.mustDial(issued.Key).open()
	if status, _ := n.do("DELETE", "/v1/tenants/acme/keys/"+issued.ID, testAdminKey,
		""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d", status)
	}
	if _, status := n.dial(issued.Key, ""); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key: %d", status)
	}
}
