package netpol

import (
	"context"
	"errors"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// Scenario is a set of policies applied at once to the model in its initial
// state, and connections whose expected outcome is the evaluator's.
type Scenario struct {
	Name string
	// Policies builds the policies from the pods' IPs.
	Policies func(ips PodIPs) []*networkingv1.NetworkPolicy
	Samples  []Sample
}

// RandomScenario returns the scenario of seed: numPolicies random policies
// and numSamples random connections. It is reproducible: the same seed and
// pod IPs give the same policies and samples.
func RandomScenario(m *Model, seed uint64, numPolicies, numSamples int) Scenario {
	return Scenario{
		Name: fmt.Sprintf("random-seed-%d", seed),
		Policies: func(ips PodIPs) []*networkingv1.NetworkPolicy {
			return NewGenerator(m, seed).Policies(numPolicies, ips)
		},
		Samples: NewGenerator(m, ^seed).Samples(numSamples),
	}
}

// RunScenario applies the policies of s, waits for their realization and
// probes its samples until they all match the evaluator or opts.Attempts are
// spent. On failure it logs the mismatching samples with the evaluator's
// reasoning and the policies as YAML. Unless opts.KeepState is set, it ends
// with [Cleanup]; it expects the cluster to start clean.
func RunScenario(ctx context.Context, r Reporter, m *Model, cl Cluster, p Prober, s Scenario, opts Options) (err error) {
	opts = opts.withDefaults()
	if !opts.KeepState {
		defer func() {
			if cerr := Cleanup(context.WithoutCancel(ctx), m, cl); cerr != nil {
				err = errors.Join(err, fmt.Errorf("scenario %s: %w", s.Name, cerr))
			}
		}()
	}
	ips, err := cl.PodIPs(ctx, m.PodIDs())
	if err != nil {
		return fmt.Errorf("scenario %s: get pod IPs: %w", s.Name, err)
	}
	policies := s.Policies(ips)
	w := m.World(ips, policies)
	if err := w.Validate(); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := applyStep(ctx, m, cl, Step{Apply: policies}, ips); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := cl.WaitRealized(ctx); err != nil {
		return fmt.Errorf("scenario %s: wait for realization: %w", s.Name, err)
	}
	r.Logf("scenario %s: %d policies, %d samples", s.Name, len(policies), len(s.Samples))

	conns := make([]connection, 0, len(s.Samples))
	for _, smp := range s.Samples {
		if smp.From == smp.To && !opts.ProbeSelf {
			continue
		}
		conns = append(conns, connection{from: smp.From, to: smp.To, ip: ips[smp.To], proto: smp.Protocol, port: smp.Port})
	}
	var wrong []string
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, opts.RetryDelay); err != nil {
				return fmt.Errorf("scenario %s: %w", s.Name, err)
			}
		}
		wrong = wrong[:0]
		for _, o := range probeAll(ctx, p, opts.Tracer, conns, opts.Workers) {
			d := w.Decide(o.conn.from, o.conn.to, o.conn.proto, o.conn.port)
			switch {
			case o.err != nil:
				wrong = append(wrong, fmt.Sprintf("%s: probe failed: %v; evaluator: %s", o.conn, o.err, d))
			case o.allowed != d.Allowed:
				wrong = append(wrong, fmt.Sprintf("%s: observed allowed=%t; evaluator: %s", o.conn, o.allowed, d))
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		if len(wrong) == 0 {
			r.Logf("scenario %s: all samples as expected (attempt %d)", s.Name, attempt)
			return nil
		}
		r.Logf("scenario %s attempt %d: %d samples differ", s.Name, attempt, len(wrong))
	}
	r.Logf("scenario %s: differing samples:\n  %s\npolicies:\n%s", s.Name, strings.Join(wrong, "\n  "), policiesYAML(policies))
	return fmt.Errorf("scenario %s: %d of %d samples differ after %d attempts, first %s", s.Name, len(wrong), len(conns), opts.Attempts, wrong[0])
}

// policiesYAML renders policies for logs.
func policiesYAML(policies []*networkingv1.NetworkPolicy) string {
	var b strings.Builder
	for _, p := range policies {
		out, err := yaml.Marshal(p)
		if err != nil {
			fmt.Fprintf(&b, "# %s/%s: %v\n", p.Namespace, p.Name, err)
			continue
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	return b.String()
}
