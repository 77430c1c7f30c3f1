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

// ownListing is a user key's REST listing: its count and, when it has one,
// its installation.
func ownListing(t *testing.T, a *app, key string) (int, map[string]any) {
	t.Helper()
	res := a.do(t, http.MethodGet, "/api/installations", key, "")
	if res.Status != http.StatusOK {
		t.Fatalf("listing: %d %s", res.Status, res.Raw)
	}
	list := res.JSON["installations"].([]any)
	if res.JSON["count"] != float64(len(list)) {
		t.Fatalf("count %v for %d rows", res.JSON["count"], len(list))
	}
	if len(list) == 0 {
		return 0, nil
	}
	return len(list), list[0].(map[string]any)
}

// A user polling its own listing costs one query a second, yet sees its
// own changes at once: a new registration, a re-registration, the latest
// heartbeat (before it is written), a deregistration.
func TestOwnListingIsCachedButNeverBehindThisServer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		key := a.createKey(t, "u1", "user", "solo")
		if n, _ := ownListing(t, a, key); n != 0 {
			t.Fatalf("%d installations before registering", n)
		}
		a.register(t, a.AdminKey, "u1", "home")
		if n, inst := ownListing(t, a, key); n != 1 || inst["mode"] != "home" {
			t.Fatalf("after registering: %d %v", n, inst)
		}

		statements := countQueries(a)
		for range 5 {
			ownListing(t, a, key)
		}
		if got := statements(); len(got) != 0 {
			t.Errorf("5 listings within a second ran %d statements: %v", len(got), got)
		}
		a.Clock.Advance(time.Second)
		ownListing(t, a, key)
		if got := statements(); len(got) != 1 {
			t.Errorf("a listing a second later ran %d statements, want 1: %v", len(got), got)
		}

		a.Clock.Advance(10 * time.Second)
		a.do(t, http.MethodPost, "/api/heartbeat", "", `{"userId":"u1"}`)
		if _, inst := ownListing(t, a, key); inst["lastSeen"] != a.Clock.Now().Format(time.RFC3339) {
			t.Errorf("lastSeen %v before the flush, want the heartbeat's %s", inst["lastSeen"], a.Clock.Now().Format(time.RFC3339))
		}

		a.register(t, a.AdminKey, "u1", "link")
		if _, inst := ownListing(t, a, key); inst["mode"] != "link" {
			t.Errorf("mode %v right after re-registering as link", inst["mode"])
		}
		a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "u1") }`, nil)
		if n, inst := ownListing(t, a, key); n != 0 {
			t.Errorf("still listed right after deregistering: %v", inst)
		}
	})
}

// Another replica's cached row gives way within the cache's second: a
// re-registration made elsewhere shows once that second has passed.
func TestOwnListingFollowsOtherReplicasWithinASecond(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		b := newApp(t, a.dbURL, nil)
		key := a.createKey(t, "u1", "user", "solo")
		a.register(t, a.AdminKey, "u1", "home")
		if _, inst := ownListing(t, b, key); inst["mode"] != "home" {
			t.Fatalf("replica b: %v", inst)
		}
		a.register(t, a.AdminKey, "u1", "link")
		b.Clock.Advance(time.Second)
		if _, inst := ownListing(t, b, key); inst["mode"] != "link" {
			t.Errorf("replica b a second after the re-registration: mode %v", inst["mode"])
		}
		a.mustGraphql(t, a.AdminKey, `mutation { deregisterInstallation(userId: "u1") }`, nil)
		b.Clock.Advance(time.Second)
		if n, inst := ownListing(t, b, key); n != 0 {
			t.Errorf("replica b a second after the deregistration: %v", inst)
		}
	})
}
