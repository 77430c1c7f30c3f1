package graph

import (
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/fleet"
)

// Limits on what callers may store. They keep rows small and make hostile
// input (megabyte tokens, control characters, NUL bytes that PostgreSQL
// refuses) a clear 400 instead of a database error.
const (
	maxUserIDChars       = 256
	maxGatewayTokenChars = 4096
	maxLabelChars        = 256
	maxFeatures          = 64
	maxFeatureChars      = 64
)

// checkText returns an Invalid error when s is too long or is not printable
// UTF-8 text.
func checkText(field, s string, maxChars int) error {
	if !utf8.ValidString(s) {
		return errs.New(errs.Invalid, "%s must be valid UTF-8", field)
	}
	if utf8.RuneCountInString(s) > maxChars {
		return errs.New(errs.Invalid, "%s must be at most %d characters", field, maxChars)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return errs.New(errs.Invalid, "%s must not contain control characters", field)
		}
	}
	return nil
}

// checkUserID enforces the contract: a non-empty string of at most 256
// characters. The "is required" message is the one the REST document names.
func checkUserID(userID string) error {
	if userID == "" {
		return errs.New(errs.Invalid, "userId is required")
	}
	return checkText("userId", userID, maxUserIDChars)
}

func checkMode(m fleet.Mode) error {
	if !m.Valid() {
		return errs.New(errs.Invalid, "mode must be one of home, link, cloud")
	}
	return nil
}

func checkPlan(p fleet.Plan) error {
	if !p.Valid() {
		return errs.New(errs.Invalid, "plan must be one of label, solo, collective, network")
	}
	return nil
}

func checkRole(r fleet.Role) error {
	if !r.Valid() {
		return errs.New(errs.Invalid, "role must be one of user, admin")
	}
	return nil
}

func checkExpiry(expiresAt *time.Time, now time.Time) error {
	if expiresAt != nil && !expiresAt.After(now) {
		return errs.New(errs.Invalid, "expiresAt must be in the future")
	}
	return nil
}

// firstError returns the first non-nil error: checks listed in the order
// their messages should win.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkFeatures(features []string) error {
	if len(features) > maxFeatures {
		return errs.New(errs.Invalid, "features must have at most %d entries", maxFeatures)
	}
	for _, f := range features {
		if f == "" {
			return errs.New(errs.Invalid, "features must not contain empty names")
		}
		if err := checkText("features", f, maxFeatureChars); err != nil {
			return err
		}
	}
	return nil
}

// isSubset reports whether every element of sub is in set.
func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}
