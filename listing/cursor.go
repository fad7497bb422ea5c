package listing

import (
	"fmt"
	"strconv"
)

// Cursor is a position of a scan: the hash of the first key not yet
// listed, or the start hash of the partition the scan is at (see the
// package doc). Start is the start of a scan.
type Cursor uint64

// Start is the cursor of a new scan.
const Start Cursor = 0

// ParseCursor reads a cursor as printed by String; "" is Start.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Start, nil
	}
	if len(s) > 20 {
		return 0, fmt.Errorf("cursor %.24q...: not a cursor", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: not a cursor (want the decimal number a previous page returned)", s)
	}
	return Cursor(v), nil
}

// String prints c in decimal.
func (c Cursor) String() string { return strconv.FormatUint(uint64(c), 10) }
