package traceflow

import (
	"fmt"
	"time"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

// addResult adds a node's result to st, the sender's first, unless that
// node reported already or the trace failed. A running trace succeeds once
// it has the sender's result and a final one (the nodes report in any
// order). It returns whether st changed.
func addResult(st *v1alpha1.TraceflowStatus, r v1alpha1.NodeResult) bool {
	if st.Phase != v1alpha1.PhaseRunning && st.Phase != v1alpha1.PhaseSucceeded {
		return false
	}
	for _, have := range st.Results {
		if have.Node == r.Node {
			return false
		}
	}
	if r.Role == v1alpha1.RoleSender {
		st.Results = append([]v1alpha1.NodeResult{r}, st.Results...)
	} else {
		st.Results = append(st.Results, r)
	}
	if st.Phase == v1alpha1.PhaseRunning && complete(st) {
		st.Phase = v1alpha1.PhaseSucceeded
	}
	return true
}

// complete says whether st has the sender's result and a final one.
func complete(st *v1alpha1.TraceflowStatus) bool {
	sender, done := false, false
	for _, r := range st.Results {
		sender = sender || r.Role == v1alpha1.RoleSender
		done = done || final(r.Observations)
	}
	return sender && done
}

// final says whether observations end with a final action.
func final(obs []v1alpha1.Observation) bool {
	return len(obs) > 0 && obs[len(obs)-1].Action.Final()
}

// tunnelHop returns the observation of a sender result that sent the
// packet into the tunnel.
func tunnelHop(st *v1alpha1.TraceflowStatus, sender string) (v1alpha1.Observation, bool) {
	for _, r := range st.Results {
		if r.Node != sender || len(r.Observations) == 0 {
			continue
		}
		last := r.Observations[len(r.Observations)-1]
		if last.Action == v1alpha1.ActionForwarded && last.TunnelDstIP != "" {
			return last, true
		}
	}
	return v1alpha1.Observation{}, false
}

// waitingForReceiver says whether the sender saw the packet into the
// tunnel and no other node reported it yet: the case a packet sent again
// may fix (the receiver's flows came late).
func waitingForReceiver(st *v1alpha1.TraceflowStatus, sender string) bool {
	if _, ok := tunnelHop(st, sender); !ok {
		return false
	}
	for _, r := range st.Results {
		if r.Node != sender {
			return false
		}
	}
	return true
}

// timeoutReason says why a trace that timed out did not finish.
func timeoutReason(st *v1alpha1.TraceflowStatus, sender string, timeout time.Duration) string {
	if hop, ok := tunnelHop(st, sender); ok && waitingForReceiver(st, sender) {
		to := hop.TunnelDstIP
		if hop.TunnelDstNode != "" {
			to = hop.TunnelDstNode + " (" + hop.TunnelDstIP + ")"
		}
		return fmt.Sprintf("timed out after %s: the packet left %s through the tunnel to %s, which did not report it (is its agent running?)",
			timeout, sender, to)
	}
	if len(st.Results) == 0 {
		return fmt.Sprintf("timed out after %s: no node reported the packet (it was dropped where no Traceflow flow reports it)", timeout)
	}
	return fmt.Sprintf("timed out after %s: the packet did not reach a final point", timeout)
}
