package authz

import (
	"fmt"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// decideTenantManager applies the rights of a partner's tenant managers to
// a request on invitations or links (see required): read and decline
// (delete) their domain's invitations, accept one by creating a
// PartnerLink, and read or end (delete) their links.
func (t *tenant) decideTenantManager(id Identity, r *Request, managers string) Decision {
	if !id.InGroup(managers) {
		return deny(NotTenantManager, fmt.Sprintf("only members of %s:%s may %s %s", id.Domain, managers, r.Verb, r.Resource))
	}
	switch {
	case r.Resource == "partnerinvitations" && (r.Verb == "get" || r.Verb == "delete"):
		if inv, ok := t.invitations[r.Name]; ok && string(inv.Spec.PartnerDomain) == id.Domain {
			return allow("tenant manager of the invited partner")
		}
		return deny(NotTenantManager, fmt.Sprintf("no invitation %q for %s in namespace %q", r.Name, id.Domain, r.Namespace))
	case r.Resource == "partnerlinks" && r.Verb == "create":
		for _, inv := range t.invitations {
			if string(inv.Spec.PartnerDomain) == id.Domain && inv.Status.Phase != v1alpha1.InvitationAccepted && inv.Status.Phase != v1alpha1.InvitationExpired {
				return allow("tenant manager accepting an invitation; the admission webhook checks which")
			}
		}
		return deny(NotTenantManager, fmt.Sprintf("no pending invitation for %s in namespace %q", id.Domain, r.Namespace))
	case r.Resource == "partnerlinks" && (r.Verb == "get" || r.Verb == "delete"):
		if l, ok := t.links[r.Name]; ok && string(l.Spec.PartnerDomain) == id.Domain {
			return allow("tenant manager of the linked partner")
		}
		// kubectl apply reads the link before it creates it: a link that
		// does not exist yet may be read under the name of an invitation.
		if inv, ok := t.invitations[r.Name]; ok && r.Verb == "get" && string(inv.Spec.PartnerDomain) == id.Domain {
			return allow("tenant manager of the invited partner")
		}
		return deny(NotTenantManager, fmt.Sprintf("no PartnerLink %q of %s in namespace %q", r.Name, id.Domain, r.Namespace))
	}
	return deny(NotTenantManager, fmt.Sprintf("tenant managers may not %s %s", r.Verb, r.Resource))
}
