package bench

import "errors"

// Errors of a run. Each is wrapped with what went wrong; match with errors.Is.
var (
	// ErrInvalid: an option breaks a bound; the message says which.
	ErrInvalid = errors.New("bench: invalid option")
	// ErrStats: GET /stats failed or answered something that is not the
	// statistics document (no such endpoint, refused, malformed).
	ErrStats = errors.New("bench: server statistics unavailable")
	// ErrStatsReset: a later /stats snapshot counts less than an earlier one, as
	// after a restart of the server; the window between them cannot be measured.
	ErrStatsReset = errors.New("bench: server statistics went backwards")
	// ErrNoSessions: not one session could be opened, so nothing was measured.
	ErrNoSessions = errors.New("bench: no session could be opened")
)
