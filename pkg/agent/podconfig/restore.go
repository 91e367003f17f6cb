package podconfig

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/agent/openflow"
)

// PodExists tells whether a pod still exists (from the API server).
type PodExists func(namespace, name string) bool

// Restore rebuilds the pods from the bridge's ports after an agent
// restart: every port that carries a container ID is a pod. Pods that
// still exist get their flows re-asserted (same flows, no disruption);
// ports of pods that went away while the agent was down are disconnected.
func (c *Configurator) Restore(ctx context.Context, exists PodExists) error {
	ports, err := c.cfg.Bridge.ListPorts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	restored, removed := 0, 0
	for _, port := range ports {
		ids := port.ExternalIDs
		if ids[KeyContainerID] == "" {
			continue
		}
		p := &Pod{
			ContainerID: ids[KeyContainerID], IfName: ids[KeyIfName], Netns: ids[KeyNetns],
			PodNamespace: ids[KeyPodNamespace], PodName: ids[KeyPodName], HostIf: port.Name,
		}
		ip, ipErr := netip.ParseAddr(ids[KeyIP])
		mac, macErr := net.ParseMAC(ids[KeyMAC])
		if ipErr != nil || macErr != nil || port.OFPort <= 0 || !exists(p.PodNamespace, p.PodName) {
			klog.InfoS("Removing the port of a pod that is gone", "port", port.Name, "pod", klog.KRef(p.PodNamespace, p.PodName))
			if err := c.disconnect(ctx, p, ""); err != nil {
				errs = append(errs, err)
			}
			removed++
			continue
		}
		p.IP, p.MAC, p.OFPort = ip, mac, uint32(port.OFPort)
		if err := c.cfg.Flows.Sync(ctx, Owner(p.ContainerID), openflow.CategoryPod, c.podFlows(p)); err != nil {
			errs = append(errs, err)
			continue
		}
		c.put(p)
		restored++
	}
	klog.InfoS("Restored pods from OVSDB", "restored", restored, "removed", removed)
	return errors.Join(errs...)
}
