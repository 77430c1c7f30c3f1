package main

// Code generation, in order: ent (with entgql writing graph/ent.graphqls),
// then gqlgen over every graph/*.graphqls.
//go:generate go run -mod=mod ./ent/entc.go
//go:generate go run -mod=mod github.com/99designs/gqlgen
