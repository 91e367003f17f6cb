package cluster

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// PrintStatus writes the lab's processes and nodes to w.
func PrintStatus(ctx context.Context, w io.Writer, lab layout.Lab, client kubernetes.Interface) error {
	st, err := LoadState(lab)
	if err != nil {
		return err
	}
	recs, err := proc.Load(lab.PIDDir())
	if err != nil {
		return err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	fmt.Fprintf(w, "lab %q: %d nodes, cni %s, up since %s, state %s\n\n", st.Name, len(st.Nodes), st.CNI, st.CreatedAt.Format("15:04:05"), lab.StateDir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE")
	down := 0
	for _, r := range recs {
		state := "running"
		if !r.Alive() {
			state = "EXITED"
			down++
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.Name, r.PID, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNETNS\tINTERNAL-IP\tPOD-CIDR\tREADY")
	for _, n := range st.Nodes {
		node, err := client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%v\n", n, lab.NodeNetns(n), err)
			continue
		}
		ip := ""
		for _, a := range node.Status.Addresses {
			if a.Type == "InternalIP" {
				ip = a.Address
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", n, lab.NodeNetns(n), ip, node.Spec.PodCIDR, nodeReady(node))
	}
	fmt.Fprintf(tw, "external\t%s\t%s\t-\t-\n", lab.ExternalNetns(), layout.ExternalIP)
	if err := tw.Flush(); err != nil {
		return err
	}
	if down > 0 {
		return fmt.Errorf("%d lab processes have exited; see %s", down, lab.LogDir())
	}
	return nil
}
