package netpol

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// portNameRE is the IANA service name syntax the apiserver requires of
// named ports; the length (at most 15), the letter it must contain and the
// ban on "--" are checked apart.
var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidatePolicy rejects the policies the apiserver would reject, as far as
// the evaluator's semantics are concerned: missing name or namespace,
// invalid selectors, peers mixing ipBlock and selectors or setting nothing,
// bad CIDRs or excepts that are not strict subsets of their CIDR, unknown
// protocols, ports out of range, endPort without a numeric port or below
// it, malformed port names and unknown or repeated policy types.
func ValidatePolicy(p *networkingv1.NetworkPolicy) error {
	if p.Name == "" || p.Namespace == "" {
		return fmt.Errorf("policy %q in namespace %q: name and namespace are required", p.Name, p.Namespace)
	}
	var errs []error
	if err := checkSelector(&p.Spec.PodSelector); err != nil {
		errs = append(errs, fmt.Errorf("podSelector: %w", err))
	}
	seen := map[networkingv1.PolicyType]bool{}
	for _, t := range p.Spec.PolicyTypes {
		if (t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress) || seen[t] {
			errs = append(errs, fmt.Errorf("policyTypes: unexpected or repeated %q", t))
		}
		seen[t] = true
	}
	for i, r := range p.Spec.Ingress {
		errs = append(errs, checkRule(fmt.Sprintf("ingress[%d]", i), r.From, r.Ports)...)
	}
	for i, r := range p.Spec.Egress {
		errs = append(errs, checkRule(fmt.Sprintf("egress[%d]", i), r.To, r.Ports)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("policy %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// Validate checks every policy of the world with [ValidatePolicy].
func (w *World) Validate() error {
	var errs []error
	for _, p := range w.Policies {
		errs = append(errs, ValidatePolicy(p))
	}
	return errors.Join(errs...)
}

func checkRule(where string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) []error {
	var errs []error
	for i, peer := range peers {
		if err := checkPeer(peer); err != nil {
			errs = append(errs, fmt.Errorf("%s peer %d: %w", where, i, err))
		}
	}
	for i, port := range ports {
		if err := checkPort(port); err != nil {
			errs = append(errs, fmt.Errorf("%s port %d: %w", where, i, err))
		}
	}
	return errs
}

func checkPeer(peer networkingv1.NetworkPolicyPeer) error {
	if peer.IPBlock != nil {
		if peer.PodSelector != nil || peer.NamespaceSelector != nil {
			return errors.New("ipBlock cannot be combined with selectors")
		}
		return checkIPBlock(peer.IPBlock)
	}
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return errors.New("one of podSelector, namespaceSelector or ipBlock is required")
	}
	if peer.PodSelector != nil {
		if err := checkSelector(peer.PodSelector); err != nil {
			return fmt.Errorf("podSelector: %w", err)
		}
	}
	if peer.NamespaceSelector != nil {
		if err := checkSelector(peer.NamespaceSelector); err != nil {
			return fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	return nil
}

func checkIPBlock(b *networkingv1.IPBlock) error {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return fmt.Errorf("ipBlock cidr: %w", err)
	}
	for _, e := range b.Except {
		except, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("ipBlock except: %w", err)
		}
		if except.Addr().Is4() != cidr.Addr().Is4() || except.Bits() <= cidr.Bits() || !cidr.Contains(except.Masked().Addr()) {
			return fmt.Errorf("ipBlock except %s is not a strict subset of %s", e, b.CIDR)
		}
	}
	return nil
}

func checkPort(p networkingv1.NetworkPolicyPort) error {
	if p.Protocol != nil {
		switch *p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return fmt.Errorf("unknown protocol %q", *p.Protocol)
		}
	}
	if p.Port == nil {
		if p.EndPort != nil {
			return errors.New("endPort needs a port")
		}
		return nil
	}
	if p.Port.Type == intstr.String {
		if p.EndPort != nil {
			return errors.New("endPort needs a numeric port")
		}
		name := p.Port.StrVal
		if len(name) > 15 || !portNameRE.MatchString(name) || strings.Contains(name, "--") || !strings.ContainsAny(name, "abcdefghijklmnopqrstuvwxyz") {
			return fmt.Errorf("invalid port name %q", p.Port.StrVal)
		}
		return nil
	}
	if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
		return fmt.Errorf("port %d out of range", p.Port.IntVal)
	}
	if p.EndPort != nil && (*p.EndPort < p.Port.IntVal || *p.EndPort > 65535) {
		return fmt.Errorf("endPort %d below port %d or out of range", *p.EndPort, p.Port.IntVal)
	}
	return nil
}
