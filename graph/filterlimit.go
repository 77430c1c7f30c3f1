package graph

import (
	"reflect"

	"github.com/agentbot/registry/errs"
)

// Limits on a where filter. Beyond them SQLite refuses the statement
// ("Expression tree is too large", "too many SQL variables") and PostgreSQL
// takes long to plan it; no dashboard needs more.
const (
	maxFilterDepth  = 10   // nesting of not/and/or
	maxFilterNodes  = 100  // where-objects in one filter
	maxFilterValues = 1000 // items in all of its ...In / ...NotIn lists
)

// checkFilter measures a generated where-input (any *ent.XWhereInput):
// nested where-objects through its Not, And and Or fields, and the items of
// its list fields.
func checkFilter(where any) error {
	nodes, values := 0, 0
	var walk func(v reflect.Value, depth int) error
	walk = func(v reflect.Value, depth int) error {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
			v = v.Elem()
		}
		nodes++
		if depth > maxFilterDepth || nodes > maxFilterNodes {
			return errs.New(errs.Invalid, "where filter too large: at most %d nested levels and %d conditions", maxFilterDepth, maxFilterNodes)
		}
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Pointer && f.Type().Elem() == v.Type():
				if err := walk(f, depth+1); err != nil {
					return err
				}
			case f.Kind() == reflect.Slice && f.Type().Elem() == reflect.PointerTo(v.Type()):
				for j := range f.Len() {
					if err := walk(f.Index(j), depth+1); err != nil {
						return err
					}
				}
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() != reflect.Func:
				values += f.Len()
				if values > maxFilterValues {
					return errs.New(errs.Invalid, "where filter too large: at most %d values in its lists", maxFilterValues)
				}
			}
		}
		return nil
	}
	return walk(reflect.ValueOf(where), 1)
}
