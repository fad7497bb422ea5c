package bench

import "fmt"

// The enumerations of a run's parameters (Workload, Distribution,
// CoordPolicy, FaultAction) marshal as their names, with the zero value
// (unset) as "". These helpers are their String, MarshalText,
// UnmarshalText and Parse written once.

// nameOf returns names[v], or "what(v)" for a value without a name.
func nameOf[T ~int](names map[T]string, v T, what string) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("%s(%d)", what, int(v))
}

// marshalName is MarshalText of v, whose name is name when valid: the zero
// value marshals as "", an invalid value is an ErrInvalidConfig naming what.
func marshalName[T ~int](v T, valid bool, name, what string) ([]byte, error) {
	if v == 0 {
		return nil, nil
	}
	if !valid {
		return nil, fmt.Errorf("%s %d: %w", what, int(v), ErrInvalidConfig)
	}
	return []byte(name), nil
}

// unmarshalName is UnmarshalText with parse: "" is the zero value, and *v
// is left alone when parse fails.
func unmarshalName[T ~int](v *T, b []byte, parse func(string) (T, error)) error {
	if len(b) == 0 {
		*v = 0
		return nil
	}
	p, err := parse(string(b))
	if err == nil {
		*v = p
	}
	return err
}

// lookupName returns the value whose name is s.
func lookupName[T ~int](names map[T]string, s string) (T, bool) {
	for v, name := range names {
		if name == s {
			return v, true
		}
	}
	return 0, false
}
