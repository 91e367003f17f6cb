package netpol

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// selectorMatches tells whether labels satisfy sel: every matchLabels pair
// and every matchExpressions requirement (they are ANDed). An empty selector
// matches everything; callers handle a nil selector themselves, because its
// meaning depends on where it appears.
func selectorMatches(sel *metav1.LabelSelector, labels map[string]string) (bool, error) {
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false, nil
		}
	}
	for _, req := range sel.MatchExpressions {
		ok, err := requirementMatches(req, labels)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func requirementMatches(req metav1.LabelSelectorRequirement, labels map[string]string) (bool, error) {
	if err := checkRequirement(req); err != nil {
		return false, err
	}
	value, present := labels[req.Key]
	switch req.Operator {
	case metav1.LabelSelectorOpIn:
		return present && slices.Contains(req.Values, value), nil
	case metav1.LabelSelectorOpNotIn:
		return !present || !slices.Contains(req.Values, value), nil
	case metav1.LabelSelectorOpExists:
		return present, nil
	default: // DoesNotExist, checked above
		return !present, nil
	}
}

// checkRequirement rejects what the apiserver rejects: an unknown operator,
// In/NotIn without values, Exists/DoesNotExist with values.
func checkRequirement(req metav1.LabelSelectorRequirement) error {
	switch req.Operator {
	case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
		if len(req.Values) == 0 {
			return fmt.Errorf("requirement on %q: operator %s needs values", req.Key, req.Operator)
		}
	case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		if len(req.Values) != 0 {
			return fmt.Errorf("requirement on %q: operator %s takes no values", req.Key, req.Operator)
		}
	default:
		return fmt.Errorf("requirement on %q: unknown operator %q", req.Key, req.Operator)
	}
	return nil
}

// checkSelector validates every requirement of sel.
func checkSelector(sel *metav1.LabelSelector) error {
	for _, req := range sel.MatchExpressions {
		if err := checkRequirement(req); err != nil {
			return err
		}
	}
	return nil
}
