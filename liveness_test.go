package main

// Liveness tests (CONTRACT section 2): status is derived from lastSeen and
// the inactivity threshold wherever it is read, with the injected clock.

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// liveEachBackend is forEachBackend with a configuration change; the caller
// calls t.Parallel itself.
func liveEachBackend(t *testing.T, name string, adjust func(*config), test func(t *testing.T, a *app)) {
	t.Helper()
	for _, b := range backends(t) {
		t.Run(name+"_"+b.name, func(t *testing.T) {
			t.Parallel()
			test(t, newApp(t, b.newURL(t), adjust))
		})
	}
}

// liveView is everything the APIs say about liveness at one moment.
type liveView struct {
	rest     map[string]string // REST status by userId
	gql      map[string]string // GraphQL status by userId
	active   []string          // where: {status: ACTIVE}
	inactive []string          // where: {status: INACTIVE}
	summary  [3]int            // fleetSummary total, active, inactive
}

func liveRead(t *testing.T, a *app) liveView {
	t.Helper()
	v := liveView{rest: map[string]string{}, gql: map[string]string{}}
	res := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, "")
	if res.Status != 200 {
		t.Fatalf("GET /api/installations: %d %s", res.Status, res.Raw)
	}
	list, _ := res.JSON["installations"].([]any)
	for _, it := range list {
		v.rest[gqxString(t, it, "userId")] = gqxString(t, it, "status")
	}
	d := a.mustGraphql(t, a.AdminKey, `{
		all: installations { edges { node { userId status } } }
		active: installations(where: {status: ACTIVE}) { totalCount edges { node { userId } } }
		inactive: installations(where: {status: INACTIVE}) { totalCount edges { node { userId } } }
		fleetSummary { total active inactive }
	}`, nil)
	for _, n := range gqxNodes(t, gqxAt(t, d, "all")) {
		v.gql[gqxString(t, n, "userId")] = gqxString(t, n, "status")
	}
	v.active = gqxSorted(gqxUserIDs(t, gqxAt(t, d, "active")))
	v.inactive = gqxSorted(gqxUserIDs(t, gqxAt(t, d, "inactive")))
	if gqxInt(t, d, "active", "totalCount") != len(v.active) || gqxInt(t, d, "inactive", "totalCount") != len(v.inactive) {
		t.Errorf("status filter totalCount disagrees with its edges: %v", d)
	}
	v.summary = [3]int{gqxInt(t, d, "fleetSummary", "total"), gqxInt(t, d, "fleetSummary", "active"), gqxInt(t, d, "fleetSummary", "inactive")}
	return v
}

// liveExpect checks that every API agrees that exactly the users in active
// are active and the others inactive.
func liveExpect(t *testing.T, a *app, when string, active, inactive []string) {
	t.Helper()
	v := liveRead(t, a)
	active, inactive = gqxSorted(active), gqxSorted(inactive)
	for _, u := range active {
		if v.rest[u] != "active" || v.gql[u] != "ACTIVE" {
			t.Errorf("%s: %s should be active: REST %q, GraphQL %q", when, u, v.rest[u], v.gql[u])
		}
	}
	for _, u := range inactive {
		if v.rest[u] != "inactive" || v.gql[u] != "INACTIVE" {
			t.Errorf("%s: %s should be inactive: REST %q, GraphQL %q", when, u, v.rest[u], v.gql[u])
		}
	}
	if !slices.Equal(v.active, active) {
		t.Errorf("%s: status ACTIVE filter %v, want %v", when, v.active, active)
	}
	if !slices.Equal(v.inactive, inactive) {
		t.Errorf("%s: status INACTIVE filter %v, want %v", when, v.inactive, inactive)
	}
	if want := [3]int{len(active) + len(inactive), len(active), len(inactive)}; v.summary != want {
		t.Errorf("%s: fleetSummary total/active/inactive %v, want %v", when, v.summary, want)
	}
}

// liveTimes returns registeredAt and lastSeen of userID as GraphQL gives them,
// and checks REST agrees (to the second).
func liveTimes(t *testing.T, a *app, userID string) (registeredAt, lastSeen time.Time) {
	t.Helper()
	a.settle(t)
	d := a.mustGraphql(t, a.AdminKey, `query($u: String!) { installation(userId: $u) { registeredAt lastSeen } }`, map[string]any{"u": userID})
	registeredAt, lastSeen = gqxTime(t, d, "installation", "registeredAt"), gqxTime(t, d, "installation", "lastSeen")
	res := a.do(t, http.MethodGet, "/api/installations", a.AdminKey, "")
	list, _ := res.JSON["installations"].([]any)
	found := false
	for _, it := range list {
		if gqxString(t, it, "userId") != userID {
			continue
		}
		found = true
		if r := gqxString(t, it, "registeredAt"); r != registeredAt.UTC().Truncate(time.Second).Format(time.RFC3339) {
			t.Errorf("REST registeredAt %s, GraphQL %s", r, registeredAt)
		}
		if l := gqxString(t, it, "lastSeen"); l != lastSeen.UTC().Truncate(time.Second).Format(time.RFC3339) {
			t.Errorf("REST lastSeen %s, GraphQL %s", l, lastSeen)
		}
	}
	if !found {
		t.Errorf("%s missing from the REST listing: %s", userID, res.Raw)
	}
	return registeredAt, lastSeen
}

func liveHeartbeat(t *testing.T, a *app, userID string) {
	t.Helper()
	res := a.do(t, http.MethodPost, "/api/heartbeat", "", fmt.Sprintf(`{"userId":%q}`, userID))
	if res.Status != 200 || res.JSON["success"] != true {
		t.Fatalf("heartbeat %s: %d %s", userID, res.Status, res.Raw)
	}
	if want := a.Clock.Now().UTC().Format(time.RFC3339); res.JSON["timestamp"] != want {
		t.Errorf("heartbeat timestamp %v, want %s", res.JSON["timestamp"], want)
	}
}

func TestLivenessThreshold(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t0 := a.Clock.Now()
		a.register(t, a.AdminKey, "early", "home")
		a.Clock.Advance(2 * time.Minute)
		a.register(t, a.AdminKey, "late", "link")
		liveExpect(t, a, "fresh", []string{"early", "late"}, nil)

		// early's lastSeen is exactly 5m old: not older than the threshold.
		a.Clock.Advance(3 * time.Minute)
		liveExpect(t, a, "early exactly at 5m", []string{"early", "late"}, nil)

		// One second later it is older: inactive, with no write in between.
		a.Clock.Advance(time.Second)
		liveExpect(t, a, "early at 5m1s", []string{"late"}, []string{"early"})

		a.Clock.Advance(2*time.Minute - time.Second)
		liveExpect(t, a, "late exactly at 5m", []string{"late"}, []string{"early"})
		a.Clock.Advance(time.Second)
		liveExpect(t, a, "late at 5m1s", nil, []string{"early", "late"})

		// Much later, still inactive, and nothing about it changed.
		a.Clock.Advance(48 * time.Hour)
		liveExpect(t, a, "two days later", nil, []string{"early", "late"})
		reg, seen := liveTimes(t, a, "early")
		if !reg.Equal(t0) || !seen.Equal(t0) {
			t.Errorf("reading status changed times: registeredAt %v lastSeen %v, want %v", reg, seen, t0)
		}
		d := a.mustGraphql(t, a.AdminKey, `{ installation(userId: "late") { status } }`, nil)
		if gqxString(t, d, "installation", "status") != "INACTIVE" {
			t.Errorf("installation(userId) status: %v", d)
		}

		// The boundary below a second: registered at a fractional second,
		// active at exactly 5m, inactive a millisecond later.
		a.Clock.Advance(250 * time.Millisecond)
		a.register(t, a.AdminKey, "frac", "cloud")
		a.Clock.Advance(5 * time.Minute)
		liveExpect(t, a, "frac exactly at 5m", []string{"frac"}, []string{"early", "late"})
		a.Clock.Advance(time.Millisecond)
		liveExpect(t, a, "frac at 5m + 1ms", nil, []string{"early", "frac", "late"})
	})
}

func TestLivenessHeartbeatReactivates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t0 := a.Clock.Now()
		a.register(t, a.AdminKey, "hb", "home")
		a.register(t, a.AdminKey, "other", "link")
		a.Clock.Advance(10 * time.Minute)
		liveExpect(t, a, "stale", nil, []string{"hb", "other"})

		// A REST heartbeat, without a key, brings it back.
		liveHeartbeat(t, a, "hb")
		a.settle(t)
		liveExpect(t, a, "after heartbeat", []string{"hb"}, []string{"other"})
		reg, seen := liveTimes(t, a, "hb")
		if !seen.Equal(a.Clock.Now()) {
			t.Errorf("lastSeen %v after heartbeat at %v", seen, a.Clock.Now())
		}
		if !reg.Equal(t0) {
			t.Errorf("registeredAt moved from %v to %v", t0, reg)
		}
		if _, other := liveTimes(t, a, "other"); !other.Equal(t0) {
			t.Errorf("another installation's lastSeen moved: %v", other)
		}
		// The heartbeat's own threshold: 5m after it, still active; then not.
		a.Clock.Advance(5 * time.Minute)
		liveExpect(t, a, "5m after heartbeat", []string{"hb"}, []string{"other"})
		a.Clock.Advance(time.Second)
		liveExpect(t, a, "5m1s after heartbeat", nil, []string{"hb", "other"})

		// Heartbeats keep it alive indefinitely.
		for i := range 5 {
			a.Clock.Advance(4 * time.Minute)
			liveHeartbeat(t, a, "hb")
			a.settle(t)
			liveExpect(t, a, fmt.Sprintf("heartbeat %d", i), []string{"hb"}, []string{"other"})
		}
		if reg, _ := liveTimes(t, a, "hb"); !reg.Equal(t0) {
			t.Errorf("registeredAt moved to %v", reg)
		}
		// A heartbeat for an unknown userId is acknowledged and creates
		// nothing.
		liveHeartbeat(t, a, "ghost")
		a.settle(t)
		liveExpect(t, a, "after unknown heartbeat", []string{"hb"}, []string{"other"})
	})
}

func TestLivenessReRegistration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		t0 := a.Clock.Now()
		a.register(t, a.AdminKey, "rr", "home")
		gqxRegister(t, a, a.AdminKey, "rg", "CLOUD")
		a.Clock.Advance(time.Hour)
		liveExpect(t, a, "stale", nil, []string{"rg", "rr"})

		// Through REST (register-link) and through GraphQL.
		if res := a.do(t, http.MethodPost, "/api/register-link", a.AdminKey, `{"userId":"rr"}`); res.Status != 200 {
			t.Fatalf("register-link: %d %s", res.Status, res.Raw)
		}
		liveExpect(t, a, "after REST re-registration", []string{"rr"}, []string{"rg"})
		a.Clock.Advance(time.Second)
		got := gqxRegister(t, a, a.AdminKey, "rg", "HOME")
		if got["status"] != "ACTIVE" || !gqxTime(t, got, "lastSeen").Equal(a.Clock.Now()) || !gqxTime(t, got, "registeredAt").Equal(t0) {
			t.Errorf("GraphQL re-registration: %v", got)
		}
		liveExpect(t, a, "after GraphQL re-registration", []string{"rg", "rr"}, nil)

		reg, seen := liveTimes(t, a, "rr")
		if !reg.Equal(t0) || !seen.Equal(t0.Add(time.Hour)) {
			t.Errorf("rr: registeredAt %v lastSeen %v; want %v and %v", reg, seen, t0, t0.Add(time.Hour))
		}
		reg, seen = liveTimes(t, a, "rg")
		if !reg.Equal(t0) || !seen.Equal(a.Clock.Now()) {
			t.Errorf("rg: registeredAt %v lastSeen %v; want %v and %v", reg, seen, t0, a.Clock.Now())
		}
		d := a.mustGraphql(t, a.AdminKey, `{ rr: installation(userId: "rr") { mode } rg: installation(userId: "rg") { mode } installations { totalCount } }`, nil)
		if gqxString(t, d, "rr", "mode") != "LINK" || gqxString(t, d, "rg", "mode") != "HOME" || gqxInt(t, d, "installations", "totalCount") != 2 {
			t.Errorf("after re-registrations: %v", d)
		}
	})
}

func TestLivenessCustomThreshold(t *testing.T) {
	t.Parallel()
	liveEachBackend(t, "1m", func(c *config) { c.InactiveAfter = time.Minute }, func(t *testing.T, a *app) {
		a.register(t, a.AdminKey, "quick", "home")
		a.Clock.Advance(time.Minute)
		liveExpect(t, a, "exactly 1m", []string{"quick"}, nil)
		a.Clock.Advance(time.Second)
		liveExpect(t, a, "1m1s", nil, []string{"quick"})
		liveHeartbeat(t, a, "quick")
		a.settle(t)
		liveExpect(t, a, "after heartbeat", []string{"quick"}, nil)
		a.Clock.Advance(61 * time.Second)
		liveExpect(t, a, "61s after heartbeat", nil, []string{"quick"})
	})
}
