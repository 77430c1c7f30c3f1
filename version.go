package main

import (
	"fmt"
	"runtime/debug"
)

// version describes the build: module version, VCS revision and Go version,
// as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "agentbot-registry (unknown build)"
	}
	v := "agentbot-registry " + info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return fmt.Sprintf("%s %s", v, info.GoVersion)
}
