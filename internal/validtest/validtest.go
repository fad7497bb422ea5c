// Package validtest runs the table test that every configuration type's
// Validate method has: edits of a valid configuration, each accepted or
// refused.
package validtest

import (
	"errors"
	"testing"
)

// Case is one edit of a valid configuration and whether Validate accepts
// the result. It is an alias of a struct literal type, so that the tables
// write their cases as {name, edit, valid} like any table test's.
type Case[C any] = struct {
	Name  string
	Edit  func(c *C)
	Valid bool
}

// Table is a configuration type's Validate test.
type Table[C interface{ Validate() error }] struct {
	// Base returns the valid configuration each case edits.
	Base func() C
	// Invalid, if not nil, is what every refusal must wrap.
	Invalid error
	// Same reports whether Validate left the configuration as it was (a
	// type with func fields, or NaN, cannot use ==; Equal serves the rest).
	Same func(before, after C) bool
	// Then, if not nil, checks more of each case's edited configuration.
	Then  func(t *testing.T, c C, valid bool)
	Cases []Case[C]
}

// To is the edit that replaces a configuration with c, for tables that
// list whole configurations.
func To[C any](c C) func(*C) { return func(p *C) { *p = c } }

// Equal is Table.Same for comparable configurations.
func Equal[C comparable](a, b C) bool { return a == b }

// Run runs a subtest per case: Base edited by the case must be accepted by
// Validate, or refused (wrapping Invalid), as the case says, and left as it
// was.
func (tb Table[C]) Run(t *testing.T) {
	t.Helper()
	for _, tc := range tb.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := tb.Base()
			tc.Edit(&c)
			before := c
			err := c.Validate()
			if (err == nil) != tc.Valid {
				t.Fatalf("Validate(%+v) = %v, want valid=%v", c, err, tc.Valid)
			}
			if err != nil && tb.Invalid != nil && !errors.Is(err, tb.Invalid) {
				t.Errorf("error %v does not wrap %v", err, tb.Invalid)
			}
			if !tb.Same(before, c) {
				t.Errorf("Validate changed the configuration")
			}
			if tb.Then != nil {
				tb.Then(t, c, tc.Valid)
			}
		})
	}
}
