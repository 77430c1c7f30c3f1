package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/fleet"
)

// seedInstallations inserts n installations directly (setup only), with
// lastSeen one second apart and several sharing each second, so paging has
// ties to get right.
func seedInstallations(t *testing.T, a *app, n int) {
	t.Helper()
	base := a.Clock.Now().Add(-time.Hour)
	for start := 0; start < n; start += 500 {
		var batch []*ent.InstallationCreate
		for i := start; i < min(n, start+500); i++ {
			at := base.Add(time.Duration(i/3) * time.Second)
			batch = append(batch, a.DB.Client.Installation.Create().
				SetUserID(fmt.Sprintf("seed-%05d", i)).SetMode(fleet.ModeHome).
				SetRegisteredAt(at).SetLastSeen(at))
		}
		if err := a.DB.Client.Installation.CreateBulk(batch...).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// The unpaged listing streams the whole fleet across several internal
// pages: every installation exactly once, newest lastSeen first, and a
// count equal to the rows.
func TestListingStreamsEveryInstallationOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		const n = 2345
		seedInstallations(t, a, n)
		res := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, "")
		if res.Status != http.StatusOK {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
		list := res.JSON["installations"].([]any)
		if res.JSON["count"] != float64(n) || len(list) != n {
			t.Fatalf("count %v, %d rows, want %d", res.JSON["count"], len(list), n)
		}
		seen := map[string]bool{}
		prev := ""
		for _, item := range list {
			inst := item.(map[string]any)
			id, lastSeen := inst["userId"].(string), inst["lastSeen"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
			if prev != "" && lastSeen > prev {
				t.Fatalf("%s (lastSeen %s) after an older one (%s)", id, lastSeen, prev)
			}
			prev = lastSeen
		}
		if _, has := res.JSON["nextCursor"]; has {
			t.Error("the unpaged listing has a nextCursor")
		}
	})
}

// With ?limit the listing is paged: following nextCursor visits every
// installation once, and the last page's nextCursor is null.
func TestListingPagesWithLimitAndCursor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		const n = 250
		seedInstallations(t, a, n)
		seen := map[string]bool{}
		path := "/api/installations?limit=100"
		for pages := 1; ; pages++ {
			res := a.do(t, http.MethodGet, path, a.AdminKey, "")
			if res.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", path, res.Status, res.Raw)
			}
			list := res.JSON["installations"].([]any)
			if res.JSON["count"] != float64(len(list)) || len(list) > 100 {
				t.Fatalf("page %d: count %v, %d rows", pages, res.JSON["count"], len(list))
			}
			for _, item := range list {
				id := item.(map[string]any)["userId"].(string)
				if seen[id] {
					t.Fatalf("%s on two pages", id)
				}
				seen[id] = true
			}
			next, ok := res.JSON["nextCursor"].(string)
			if !ok {
				if pages != 3 {
					t.Errorf("%d pages, want 3", pages)
				}
				break
			}
			path = "/api/installations?limit=100&cursor=" + url.QueryEscape(next)
		}
		if len(seen) != n {
			t.Errorf("visited %d installations, want %d", len(seen), n)
		}
		for _, bad := range []string{"limit=0", "limit=1001", "limit=abc", "cursor=garbage"} {
			if res := a.do(t, http.MethodGet, "/api/installations?"+bad, a.AdminKey, ""); res.Status != http.StatusBadRequest || res.JSON["success"] != false {
				t.Errorf("?%s: %d %s, want 400", bad, res.Status, res.Raw)
			}
		}
	})
}
