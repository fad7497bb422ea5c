package auth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/internal/excerpt"
)

// Role is what a principal may do. Each role includes the ones below it.
type Role uint8

// Roles, in increasing power. The zero Role is unset and allows nothing.
const (
	RoleRead  Role = iota + 1 // reads of keys, status, metrics and the cluster views
	RoleWrite                 // RoleRead plus writes and deletes of keys
	RoleAdmin                 // RoleWrite plus /admin/* (leave, remove, repair)
)

// roleNames spell the roles as the token file does, indexed by Role (the
// unset role has none), for String and ParseRole.
var roleNames = [...]string{RoleRead: "read", RoleWrite: "write", RoleAdmin: "admin"}

// String returns the role as the token file spells it.
func (r Role) String() string {
	if int(r) < len(roleNames) && roleNames[r] != "" {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses a token file's ROLE field.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames[:], s); i > 0 {
		return Role(i), nil
	}
	return 0, fmt.Errorf("bad role %q (want read, write or admin)", clip(s))
}

// Action is a kind of call a front classifies a request as.
type Action uint8

// Actions. The zero Action is unset and is treated as ActionAdmin, so a
// classifier that forgets a case fails closed.
const (
	ActionOpen   Action = iota + 1 // needs no credentials: /healthz, /readyz
	ActionStatus                   // /status, /metrics, /cluster/*: needs read
	ActionRead                     // reads of keys: needs read
	ActionWrite                    // writes and deletes of keys: needs write
	ActionAdmin                    // /admin/*: needs admin
)

// String names the action for error messages.
func (a Action) String() string {
	switch a {
	case ActionOpen:
		return "open"
	case ActionStatus:
		return "read status"
	case ActionRead:
		return "read keys"
	case ActionWrite:
		return "write keys"
	case ActionAdmin:
		return "administer the cluster"
	}
	return "administer the cluster" // unset: see ActionAdmin
}

// Needs returns the least role that may do a; 0 for ActionOpen.
func (a Action) Needs() Role {
	switch a {
	case ActionOpen:
		return 0
	case ActionStatus, ActionRead:
		return RoleRead
	case ActionWrite:
		return RoleWrite
	}
	return RoleAdmin
}

// Allows reports whether role r may do a.
func (r Role) Allows(a Action) bool { return r >= a.Needs() }

// Principal is an authenticated client: the name and role its token-file
// line gives it.
type Principal struct {
	Name string
	Role Role
}

// Errors of authentication and authorisation. Returned errors wrap them;
// test with errors.Is.
var (
	// ErrUnauthorized: no credentials, or credentials no principal holds
	// (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the principal's role may not do the action (HTTP 403).
	ErrForbidden = errors.New("forbidden")
)

// Authorize returns nil if p may do a, else an error wrapping ErrForbidden
// that names the principal, its role and the action.
func Authorize(p Principal, a Action) error {
	if p.Role.Allows(a) {
		return nil
	}
	return fmt.Errorf("%w: principal %q has role %s, which may not %s (needs %s)", ErrForbidden, p.Name, p.Role, a, a.Needs())
}

// clip bounds a string quoted in an error message.
func clip(s string) string { return excerpt.Of(s, 64) }
