package main

import (
	"net/http"
	"testing"
)

func TestHarness(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *app) {
		res := a.do(t, http.MethodPost, "/api/validate-key", a.AdminKey, "")
		if res.Status != 200 || res.JSON["userId"] != "admin" {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	})
}
