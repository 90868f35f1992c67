package finops

import "errors"

var (
	// ErrUnknownModel means the price table has no entry for a model.
	ErrUnknownModel = errors.New("finops: unknown model")
	// ErrInvalidTable means a price table does not parse or breaks a rule of the
	// format: a negative price, an empty or repeated id, a bad match rule, tiers
	// out of order, or a file over MaxPriceTableBytes.
	ErrInvalidTable = errors.New("finops: invalid price table")
	// ErrNegativeTokens means a token count was negative.
	ErrNegativeTokens = errors.New("finops: negative token count")

	// ErrInvalidEntry means a ledger entry breaks a rule: an empty or malformed
	// tenant, session or purpose, a time out of range, a negative count or cost.
	ErrInvalidEntry = errors.New("finops: invalid ledger entry")
	// ErrInvalidQuery means a ledger query or report request is malformed: an
	// unknown grouping, a range that ends before it starts.
	ErrInvalidQuery = errors.New("finops: invalid query")
	// ErrQueryTooLarge means a report would hold more groups than MaxGroups;
	// narrow the range or group coarser.
	ErrQueryTooLarge = errors.New("finops: query too large")

	// ErrBudgetExceeded means a provider call was refused because its worst-case
	// cost does not fit a hard limit. Errors that match it are *LimitError values
	// saying which limit; retrying helps only once the window rolls over or the
	// limit is raised.
	ErrBudgetExceeded = errors.New("finops: budget exceeded")
	// ErrInvalidLimit means a budget limit is malformed: an unknown scope or
	// window, a negative amount, a soft limit above its hard limit, or no amount.
	ErrInvalidLimit = errors.New("finops: invalid budget limit")

	// ErrInvalidTenant means a tenant name breaks the naming rule (see
	// ValidTenant).
	ErrInvalidTenant = errors.New("finops: invalid tenant name")
	// ErrTenantExists means a tenant of that name exists already.
	ErrTenantExists = errors.New("finops: tenant exists")
	// ErrTenantNotFound means no tenant has that name.
	ErrTenantNotFound = errors.New("finops: tenant not found")
	// ErrKeyNotFound means a tenant has no API key with that ID.
	ErrKeyNotFound = errors.New("finops: api key not found")
	// ErrUnauthorized means a presented API key is malformed, unknown or revoked.
	// It says nothing more, so that a caller cannot learn which.
	ErrUnauthorized = errors.New("finops: unauthorized")
)
