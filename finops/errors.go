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
)
