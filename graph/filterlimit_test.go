package graph

import (
	"fmt"
	"testing"

	"github.com/agentbot/registry/ent"
)

func TestCheckFilter(t *testing.T) {
	nested := func(n int) *ent.InstallationWhereInput {
		w := &ent.InstallationWhereInput{}
		for range n {
			w = &ent.InstallationWhereInput{Not: w}
		}
		return w
	}
	wide := func(n int) *ent.InstallationWhereInput {
		w := &ent.InstallationWhereInput{}
		for range n {
			w.Or = append(w.Or, &ent.InstallationWhereInput{})
		}
		return w
	}
	ids := func(n int) *ent.InstallationWhereInput {
		w := &ent.InstallationWhereInput{}
		for i := range n {
			w.UserIDIn = append(w.UserIDIn, fmt.Sprint(i))
		}
		return w
	}
	for _, tc := range []struct {
		name  string
		where *ent.InstallationWhereInput
		ok    bool
	}{
		{"none", nil, true},
		{"9 nested", nested(9), true},
		{"10 nested", nested(10), false},
		{"99 alternatives", wide(99), true},
		{"100 alternatives", wide(100), false},
		{"1000 ids", ids(1000), true},
		{"1001 ids", ids(1001), false},
	} {
		if err := checkFilter(tc.where); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
