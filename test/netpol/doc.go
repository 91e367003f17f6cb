// Package netpol holds the data and the logic of a NetworkPolicy
// conformance suite, independently of how its pods are run.
//
// The suite follows the upstream Kubernetes netpol e2e tests
// (test/e2e/network/netpol in kubernetes/kubernetes): three namespaces x, y
// and z each run pods a, b and c serving ports 80 and 81 on TCP, UDP and
// SCTP, and every test case applies some NetworkPolicies and then checks the
// full 9x9 pod-to-pod reachability matrix for one protocol and port against
// a table written out by hand.
//
// The package is organised as follows:
//
//   - model.go: the fixed topology ([Model], [PodID], [Pod], [Env], [Server])
//     and the builders of its corev1 objects.
//   - table.go: the reachability [Table] with the helpers the cases use to
//     write expectations, its diff and its printer.
//   - cases.go: the [Case], [Step] and [Probe] types, and [Cases], the 48
//     upstream cases as data, in upstream order, written in
//     cases_selectors.go, cases_ports.go, cases_updates.go, cases_egress.go,
//     cases_ipblock.go and cases_protocols.go with the shorthands of
//     builders.go. cases_extra.go adds [ExtraCases] for what upstream's
//     traffic cases leave out (endPort, named UDP and SCTP ports).
//   - evaluate.go: an independent reading of the networking/v1 spec
//     ([World.Allowed], [World.Decide]), used as a cross-check of the
//     hand-written tables and as the oracle for randomly generated
//     policies; selector.go and validate.go ([ValidatePolicy]) support it.
//   - random.go: a seeded [Generator] of random policies and samples;
//     scenario.go turns them into a [Scenario] and runs it ([RunScenario]).
//   - runner.go and probe.go: the [Cluster], [Prober] and [Tracer]
//     interfaces a real environment implements, and [RunCase] / [Cleanup].
//   - crosscheck.go: [CrossCheck], hand-written tables against the
//     evaluator.
//   - memcluster.go: an in-memory [Cluster] whose prober is the evaluator,
//     for unit tests and dry runs.
//
// Namespaces may be prefixed (for instance "np-x") so that several suites
// can share an apiserver. Policies never rely on the real namespace names
// except in the two upstream cases that are about the apiserver-managed
// kubernetes.io/metadata.name label; everywhere else they select namespaces
// by the model's own label ns=x|y|z, as older upstream versions did.
//
// The ipBlock cases build their policies from the pods' IPs at run time
// ([Step.ApplyForIPs]); their tables do not depend on the IPs, but the
// except cases assume, like upstream, that every pod IP lies in the /4
// around pod x/b ([CrossCheck] with the real IPs tells).
//
// SCTP probes are ordinary probes; when [Options.Tracer] is set the runner
// asks the tracer instead of the prober for them, so that an environment
// without SCTP sockets can decide from a trace of its dataplane.
//
// Like upstream, the runner does not check traffic from a pod to itself by
// default (the semantics of hairpin traffic differ between CNIs), although
// the hand-written tables do spell it out according to the spec.
package netpol
