package authz

import "github.com/roompro/partner-operator/api/v1alpha1"

// This file decides a partner user's requests on partnerchangerequests
// (DESIGN.md, "Change control"). A partner proposes a change by creating a
// request, and reads the requests of its own links; it never decides one
// (the verb approve, which the admission webhook asks for in a
// SubjectAccessReview), never changes one and never writes its status:
// the customer decides, the operator applies.
//
// The index knows the link of every request by name (Index.apply: the
// Feeder watches PartnerChangeRequests), so a decision is a map probe and
// a scan of the caller's grants, as for rooms. Every reason is a constant:
// deciding allocates nothing.

const (
	reasonChangeRequestProposed = "the caller's partner has an active PartnerLink in this namespace: it may propose a change, which the admission webhook checks the caller could make"
	reasonChangeRequestNoLink   = "the caller's partner has no active PartnerLink in this namespace to propose a change on"
	reasonChangeRequestMember   = "the PartnerChangeRequest belongs to a partner link on which the caller holds a role"
	reasonChangeRequestManager  = "the PartnerChangeRequest belongs to a partner link of the partner the caller is a tenant manager of"
	reasonChangeRequestsListed  = "the label selector partners.roompro.io/partner-link confines the list to partner links whose requests the caller may read"
	// reasonOtherLinksRequest answers alike a request of another partner,
	// one of the caller's partner's links it holds no role on, and a name
	// the index does not know, so that a partner cannot tell which names
	// other partners' requests have.
	reasonOtherLinksRequest = "the PartnerChangeRequest is not of a partner link the caller may read: a partner user reads the requests of the links it holds a role on, a tenant manager those of its partner's links (a request created a moment ago may take a moment to be seen: retry)"
	reasonOtherLinksList    = "the label selector partners.roompro.io/partner-link names a partner link whose requests the caller may not read: a partner user reads the requests of the links it holds a role on, a tenant manager those of its partner's links"
	reasonChangeRequestHint = "list PartnerChangeRequests of one partner link with the label selector " + v1alpha1.LabelPartnerLink + "=<link> (kubectl get partnerchangerequests -l " + v1alpha1.LabelPartnerLink + "=<link>)"
	reasonCustomerDecides   = "partner users may only create and read PartnerChangeRequests: the customer decides them (the verb approve, which RBAC grants to the customer's approvers), the operator applies them and writes their status"
)

// decideChangeRequest answers a partner user's request on
// partnerchangerequests:
//   - create: where the caller's partner has an active link (the admission
//     webhook checks the body: the link, and that the caller could make the
//     write it proposes);
//   - get, list or watch of a named request (a list or watch by
//     metadata.name arrives with the name): when its link is one the caller
//     may read (readsLink);
//   - list or watch without a name: when the label selector requires
//     partners.roompro.io/partner-link to be one of such links;
//   - anything else (update, patch, delete, deletecollection, approve, a
//     subresource such as status): never.
func (t *tenant) decideChangeRequest(c *caller, r *Request, managers string) Decision {
	if r.Subresource != "" {
		return deny(NeverForPartners, reasonCustomerDecides)
	}
	switch r.Verb {
	case "create":
		if t.activeLinksOf[c.id.Domain] > 0 {
			return allow(reasonChangeRequestProposed)
		}
		return deny(NoActiveLink, reasonChangeRequestNoLink)
	case "get", "list", "watch":
	default:
		return deny(NeverForPartners, reasonCustomerDecides)
	}
	if r.Name != "" {
		link, known := t.changeRequests[r.Name]
		if !known {
			return deny(OtherLinksRequest, reasonOtherLinksRequest)
		}
		switch t.readsLink(c, link, managers) {
		case byRole:
			return allow(reasonChangeRequestMember)
		case asManager:
			return allow(reasonChangeRequestManager)
		}
		return deny(OtherLinksRequest, reasonOtherLinksRequest)
	}
	if r.Verb == "get" {
		return deny(UnconfinedList, reasonChangeRequestHint)
	}
	// Requirements are ANDed: one that confines the list to links the
	// caller may read is enough.
	confined := false
	for _, req := range r.LabelSelector {
		if req.Key != v1alpha1.LabelPartnerLink || req.Operator != "In" && req.Operator != opEquals || len(req.Values) == 0 {
			continue
		}
		confined = true
		if t.readsAll(c, req.Values, managers) {
			return allow(reasonChangeRequestsListed)
		}
	}
	if confined {
		return deny(OtherLinksRequest, reasonOtherLinksList)
	}
	return deny(UnconfinedList, reasonChangeRequestHint)
}

// linkReader says why a caller may read a link's change requests.
type linkReader uint8

const (
	notReader linkReader = iota
	byRole               // the caller holds a grant on the link
	asManager            // the caller is a tenant manager of the link's partner
)

// readsLink says whether the caller may read the change requests of a link:
// an active link of the caller's partner domain on which it holds a grant
// (it is a member of one of the link's roles, whatever the role's
// permissions), or of which it is a tenant manager. It allocates nothing.
func (t *tenant) readsLink(c *caller, link string, managers string) linkReader {
	for _, g := range c.grants {
		if g.link.name == link {
			return byRole // grants exist only on the active links of the caller's domain
		}
	}
	if l := t.active[link]; l != nil && l.domain == c.id.Domain && c.id.InGroup(managers) {
		return asManager
	}
	return notReader
}

// readsAll reports whether the caller may read the requests of every link.
func (t *tenant) readsAll(c *caller, links []string, managers string) bool {
	for _, link := range links {
		if t.readsLink(c, link, managers) == notReader {
			return false
		}
	}
	return true
}
