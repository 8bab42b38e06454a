package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// maxNamed bounds how many registrations a refusal lists, so that a cluster
// of many partners does not get a message of thousands of names.
const maxNamed = 20

// registered checks that a PartnerOrganization registers domain: an
// invitation or a link may name only a registered partner. The registration
// is named by its domain (the CRD insists), so one Get decides; only a
// refusal lists the registrations, to say which domains may be named.
func registered(ctx context.Context, r client.Reader, domain string, path *field.Path) (field.ErrorList, error) {
	err := r.Get(ctx, client.ObjectKey{Name: domain}, &v1alpha1.PartnerOrganization{})
	switch {
	case err == nil:
		return nil, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading PartnerOrganization %q: %w", domain, err)
	}
	orgs := &v1alpha1.PartnerOrganizationList{}
	if err := r.List(ctx, orgs); err != nil {
		return nil, fmt.Errorf("listing the PartnerOrganizations: %w", err)
	}
	domains := make([]string, 0, len(orgs.Items))
	for _, o := range orgs.Items {
		domains = append(domains, string(o.Spec.Domain))
	}
	return validateRegistered(domain, domains, path), nil
}

// validateRegistered is registered's rule: domain must be one of domains
// (the registered ones); the refusal lists them, sorted, or says "none".
func validateRegistered(domain string, domains []string, path *field.Path) field.ErrorList {
	if slices.Contains(domains, domain) {
		return nil
	}
	return field.ErrorList{field.Invalid(path, domain,
		"not a registered partner organization; registered: "+namesOf(domains))}
}

// namesOf lists names sorted and comma-separated, at most maxNamed of them.
func namesOf(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	names = slices.Sorted(slices.Values(names))
	if len(names) > maxNamed {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
	}
	return strings.Join(names, ", ")
}

// organizationValidator refuses to delete a registration that a pending
// invitation or a link still names: the link would keep its partner's users
// partner users (fail closed), but nobody could accept the invitation, and
// the registration is what the platform team reads to see who is a partner.
// The CRD judges creates and updates alone; the authorization webhook keeps
// partners away from registrations (they are not in the permission matrix).
type organizationValidator struct {
	reader client.Reader
	opts   Options
}

func (v *organizationValidator) ValidateCreate(context.Context, *v1alpha1.PartnerOrganization) (admission.Warnings, error) {
	return nil, nil
}

func (v *organizationValidator) ValidateUpdate(context.Context, *v1alpha1.PartnerOrganization, *v1alpha1.PartnerOrganization) (admission.Warnings, error) {
	return nil, nil
}

// ValidateDelete lists invitations and links of every namespace through the
// API reader: deleting a registration is rare, and a cached list could miss
// an invitation created a moment ago.
func (v *organizationValidator) ValidateDelete(ctx context.Context, org *v1alpha1.PartnerOrganization) (admission.Warnings, error) {
	invitations := &v1alpha1.PartnerInvitationList{}
	if err := v.reader.List(ctx, invitations); err != nil {
		return nil, fmt.Errorf("listing the PartnerInvitations: %w", err)
	}
	links := &v1alpha1.PartnerLinkList{}
	if err := v.reader.List(ctx, links); err != nil {
		return nil, fmt.Errorf("listing the PartnerLinks: %w", err)
	}
	refs := referrers(string(org.Spec.Domain), invitations.Items, links.Items, v.opts.Clock.Now())
	if len(refs) == 0 {
		return nil, nil
	}
	return nil, forbidden(org, "partnerorganizations", deleteRefusal(string(org.Spec.Domain), refs))
}

// referrers are the objects that keep a registration of domain: every link
// that names it and every invitation that names it and can still be
// accepted (pending: neither accepted nor expired, judged at now). Each is
// "<Kind> <namespace>/<name>", links first, sorted.
func referrers(domain string, invitations []v1alpha1.PartnerInvitation, links []v1alpha1.PartnerLink, now time.Time) []string {
	var linkRefs, invRefs []string
	for i := range links {
		if string(links[i].Spec.PartnerDomain) == domain {
			linkRefs = append(linkRefs, "PartnerLink "+links[i].Namespace+"/"+links[i].Name)
		}
	}
	for i := range invitations {
		inv := &invitations[i]
		if string(inv.Spec.PartnerDomain) == domain && lifecycle.Open(inv, now) {
			invRefs = append(invRefs, "PartnerInvitation "+inv.Namespace+"/"+inv.Name)
		}
	}
	slices.Sort(linkRefs)
	slices.Sort(invRefs)
	return append(linkRefs, invRefs...)
}

// deleteRefusal names one or two of the referrers and how many more there are.
func deleteRefusal(domain string, refs []string) string {
	named := strings.Join(refs[:min(2, len(refs))], " and ")
	if more := len(refs) - 2; more > 0 {
		named += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("%s is still named by %s; delete them first", domain, named)
}
