package netpol

import (
	"context"
	"errors"
	"fmt"
)

// CrossCheck compares every hand-written table of c with the evaluator's
// verdicts, the cells from a pod to itself included, by replaying the steps
// on a [MemCluster]. ips, when not nil, replaces the memcluster's pod IPs:
// a lab can pass its real IPs to check that the ipBlock cases' assumptions
// (every pod IP inside the /4 around x/b) hold for its pod CIDR. It returns
// an error with the differing tables.
func CrossCheck(m *Model, c Case, ips PodIPs) error {
	ctx := context.Background()
	mc := NewMemCluster(m)
	for pod, ip := range ips {
		if err := mc.SetPodIP(pod, ip); err != nil {
			return fmt.Errorf("cross-check %s: %w", c.Name, err)
		}
	}
	ips, err := mc.PodIPs(ctx, m.PodIDs())
	if err != nil {
		return fmt.Errorf("cross-check %s: %w", c.Name, err)
	}
	var errs []error
	for i, step := range c.Steps {
		where := fmt.Sprintf("cross-check %s step %d (%s)", c.Name, i+1, step.Name)
		if err := applyStep(ctx, m, mc, step, ips); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		w := mc.World()
		for _, probe := range step.Probes {
			got := w.Table(probe.Want.Pods(), probe.Protocol, probe.Port)
			mismatches, err := probe.Want.Diff(got, false)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if len(mismatches) > 0 {
				errs = append(errs, fmt.Errorf("%s %s/%d: hand-written table:\n%s\nevaluator (differences between asterisks):\n%s",
					where, probe.Protocol, probe.Port, probe.Want, FormatDiff(got, mismatches)))
			}
		}
	}
	return errors.Join(errs...)
}
