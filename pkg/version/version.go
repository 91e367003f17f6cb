// Package version is the version of this build, set by the Makefile
// (git describe) through -ldflags.
package version

// Version of the build; "dev" when built without the Makefile.
var Version = "dev"
