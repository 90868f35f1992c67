package sim

import "errors"

// Sentinel errors of the simulator, matched with errors.Is.
var (
	// ErrBadReplies means a replies file holds a line that is not a conversation in
	// OpenAI chat JSON. The wrapping error names the file and the line.
	ErrBadReplies = errors.New("sim: malformed replies line")
	// ErrRepliesLineTooLong means a replies file holds a line longer than
	// MaxRepliesLine bytes. The wrapping error names the file and the line.
	ErrRepliesLineTooLong = errors.New("sim: replies line too long")
	// ErrBadFault means a fault or fault rule in text form does not parse or is
	// out of bounds. The wrapping error quotes it and says why.
	ErrBadFault = errors.New("sim: bad fault")
	// ErrBadOptions means an Options field is out of bounds. The wrapping error
	// names the field.
	ErrBadOptions = errors.New("sim: bad options")
)
