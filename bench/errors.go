package bench

import "errors"

// Errors returned by this package. Parse and validation errors wrap one of
// them with the offending input, so match with errors.Is.
var (
	// ErrSyntax is wrapped by every parser (quorums, schedules, delays,
	// workloads, distributions, durations lists) on malformed input.
	ErrSyntax = errors.New("syntax error")

	// ErrInvalidConfig is wrapped by Config.Validate, CheckerConfig.Validate
	// and Quorum.Validate when a value is out of range.
	ErrInvalidConfig = errors.New("invalid config")

	// ErrNoCoordinators is returned by Run when Client.Coordinators reports
	// fewer than one node to send requests to.
	ErrNoCoordinators = errors.New("client has no coordinators")

	// ErrBadReport is wrapped by ReadJSON when the input is not a report this
	// package wrote, is larger than MaxReportBytes, or exceeds a size cap.
	ErrBadReport = errors.New("bad report")
)
