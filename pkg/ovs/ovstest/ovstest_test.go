package ovstest

import (
	"strings"
	"testing"
)

func TestStartAddBridge(t *testing.T) {
	o := Start(t)
	o.Vsctl(t, "add-br", "br-test", "--", "set", "bridge", "br-test", "datapath_type=netdev")
	if out := o.Vsctl(t, "list-br"); !strings.Contains(out, "br-test") {
		t.Fatalf("bridge not listed: %q", out)
	}
	if out := o.Ofctl(t, "dump-flows", "br-test"); !strings.Contains(out, "actions=NORMAL") {
		t.Fatalf("default flow missing: %q", out)
	}
	o.RestartVswitchd(t)
	if out := o.Ofctl(t, "dump-flows", "br-test"); !strings.Contains(out, "actions=NORMAL") {
		t.Fatalf("bridge not back after vswitchd restart: %q", out)
	}
}
