//go:build !linux

package main

import "syscall"

// childAttr: without Linux's parent-death signal, children are stopped by
// the benchmark's own cleanup only. (The benchmark needs Linux to read
// memory from /proc anyway.)
func childAttr() *syscall.SysProcAttr { return nil }
