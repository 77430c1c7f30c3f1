package graph

import (
	"testing"
	"time"
)

// SQLite hands aggregates of timestamps back as the text its driver wrote.
func TestParseStoredTime(t *testing.T) {
	want := time.Date(2026, 12, 3, 18, 44, 43, 123456000, time.UTC)
	for _, s := range []string{"2026-12-03 18:44:43.123456 +0000 UTC", "2026-12-03T18:44:43.123456Z", "2026-12-03 18:44:43.123456+00:00"} {
		if got, err := parseStoredTime(s); err != nil || !got.Equal(want) {
			t.Errorf("parseStoredTime(%q) = %v, %v", s, got, err)
		}
	}
}
