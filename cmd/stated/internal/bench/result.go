package bench

// Result is what a run measured. Figures of a phase that did not run are zero;
// the idle figures are present only for an idle run.
type Result struct {
	// Mode is "turns" or "idle".
	Mode   string `json:"mode"`
	Server string `json:"server"`

	// Sessions is how many sessions were opened (connected and attached);
	// SessionsWanted how many the run tried to open.
	Sessions       int `json:"sessions"`
	SessionsWanted int `json:"sessions_wanted"`
	// ConnectFailures counts the connections that could not be made or
	// attached, by reason; OpenStopped says why opening stopped early, if it did.
	ConnectFailures map[string]int `json:"connect_failures"`
	OpenStopped     string         `json:"open_stopped,omitempty"`
	// SourceAddresses is how many loopback source addresses the connections
	// left from (0: the system chose, the server not being on loopback).
	SourceAddresses int     `json:"source_addresses"`
	OpenSec         float64 `json:"open_sec"`

	// TurnsPerSession is the number of rounds asked for; TurnsSent and Turns the
	// turns written and the turns answered (complete or not).
	TurnsPerSession int `json:"turns_per_session"`
	TurnsSent       int `json:"turns_sent"`
	Turns           int `json:"turns"`
	// Errors counts error frames, answers that are not complete, timeouts and
	// lost connections; ErrorsByCode by code ("timeout", "lost:REASON",
	// "answer_STATUS:CODE" or the error frame's code).
	Errors       int            `json:"errors"`
	ErrorsByCode map[string]int `json:"errors_by_code"`

	// WallSec is the time of the turn phase: the sum of its rounds, each from
	// its first write to its last answer (the reads of /stats between rounds
	// are left out). TurnsPerSec is Turns / WallSec.
	WallSec     float64 `json:"wall_sec"`
	TurnsPerSec float64 `json:"turns_per_sec"`

	// AddedMS, RelayMS and RelayFirstMS are the server's own timings over the
	// turn phase, from its /stats histograms (quantiles are bucket bounds,
	// within about 3%).
	AddedMS      Quantiles `json:"added_ms"`
	RelayMS      Quantiles `json:"relay_ms"`
	RelayFirstMS Quantiles `json:"relay_first_ms"`
	// CommitWaitMS is the part of the relay some deltas spend waiting for the
	// turn they answer to be durable: for each delta whose provider bytes were
	// read before that, the time between the two (zero from a server without
	// the histogram).
	CommitWaitMS Quantiles `json:"commit_wait_ms"`
	// RelayPathMS is the relay less any commit wait: from the moment the server
	// could pass a delta on to its frame written (zero from a server without the
	// histogram).
	RelayPathMS Quantiles `json:"relay_path_ms"`
	// FirstDeltaMS and AnswerMS are measured by the bench: from writing a turn
	// to reading its first delta, and its answer's event.
	FirstDeltaMS Quantiles `json:"first_delta_ms"`
	AnswerMS     Quantiles `json:"answer_ms"`

	// CPUSecPerTurn is the server's CPU time over the turn phase per turn
	// answered; CPUByHistory the same per window of rounds.
	CPUSecPerTurn float64     `json:"cpu_sec_per_turn"`
	CPUByHistory  []CPUWindow `json:"cpu_by_history"`

	// ResumeMS times each resume, from writing the resume frame to reading the
	// session frame. ResumeCold says the server had evicted every session
	// before the resumes began.
	ResumeMS     Quantiles `json:"resume_ms"`
	ResumeCold   bool      `json:"resume_cold"`
	Resumes      int       `json:"resumes"`
	ResumeErrors int       `json:"resume_errors"`
	EvictionSec  float64   `json:"eviction_wait_sec"`

	// The idle figures: server memory per connected idle session, whole
	// (resident set) and its Go heap and stack parts, in bytes.
	IdleBytesPerSession      *float64 `json:"idle_bytes_per_session,omitempty"`
	IdleHeapBytesPerSession  *float64 `json:"idle_heap_bytes_per_session,omitempty"`
	IdleStackBytesPerSession *float64 `json:"idle_stack_bytes_per_session,omitempty"`
	// IdleLost counts idle connections the server closed during the hold.
	IdleLost int `json:"idle_lost,omitempty"`

	// ServerBefore and ServerAfter are the server's figures the run used (its
	// /stats without histograms): around the turn phase, or around the opening
	// of idle sessions (both read after a garbage collection).
	ServerBefore *Stats `json:"server_before"`
	ServerAfter  *Stats `json:"server_after"`

	// Interrupted says the run was stopped before its end; the figures are
	// what it measured until then.
	Interrupted bool `json:"interrupted,omitempty"`
	// Notes say what a reader of the figures must know (a phase cut short, a
	// resume measured warm).
	Notes []string `json:"notes,omitempty"`
}

// CPUWindow is the server's CPU time over a window of rounds.
type CPUWindow struct {
	// History is how many turns each session had sent before the window.
	History       int     `json:"history"`
	Rounds        int     `json:"rounds"`
	Turns         int     `json:"turns"`
	CPUSec        float64 `json:"cpu_sec"`
	CPUSecPerTurn float64 `json:"cpu_sec_per_turn"`
	WallSec       float64 `json:"wall_sec"`
}
