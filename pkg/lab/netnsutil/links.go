package netnsutil

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// linkUp sets the named link up in the current thread's namespace.
func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %q: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set link %q up: %w", name, err)
	}
	return nil
}
