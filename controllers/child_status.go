package controllers

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// linkNotInEffect sets the Ready condition of a link's role or assignment
// (obj) whose link (nil when it does not exist) grants nothing, and reports
// whether it did; when the link is in effect, the caller sets Ready itself.
func linkNotInEffect(conds *[]metav1.Condition, obj client.Object, linkName string, link *v1alpha1.PartnerLink) bool {
	switch {
	case link == nil:
		setCondition(conds, obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotFound,
			fmt.Sprintf("PartnerLink %q does not exist in this namespace", linkName))
	case !linkGrantsAccess(link):
		setCondition(conds, obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPartnerLinkNotActive,
			fmt.Sprintf("PartnerLink %q is %s, not Active", link.Name, orPending(link.Status.Phase)))
	default:
		return false
	}
	return true
}

func orPending(p v1alpha1.LinkPhase) string {
	if p == "" {
		return string(v1alpha1.LinkPending)
	}
	return string(p)
}
