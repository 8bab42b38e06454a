package admission

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
	"github.com/roompro/partner-operator/internal/lifecycle"
)

// linkValidator admits an acceptance only of a pending, unexpired invitation
// of the caller's own domain, by a tenant manager of it.
type linkValidator struct {
	reader client.Reader
	opts   Options
}

func (v *linkValidator) ValidateCreate(ctx context.Context, link *v1alpha1.PartnerLink) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	domain := string(link.Spec.PartnerDomain)
	if who.upn == nil || who.upn.Domain != domain || !who.upn.InGroup(v.opts.TenantManagerGroup) {
		return nil, forbidden(link, "partnerlinks", fmt.Sprintf(
			"only members of %s:%s may accept an invitation for %s", domain, v.opts.TenantManagerGroup, domain))
	}

	invPath := field.NewPath("spec", "invitation")
	inv := &v1alpha1.PartnerInvitation{}
	if err := v.reader.Get(ctx, client.ObjectKey{Namespace: link.Namespace, Name: link.Spec.Invitation}, inv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, invalid(link, "PartnerLink", field.ErrorList{field.NotFound(invPath, link.Spec.Invitation)})
		}
		return nil, fmt.Errorf("reading PartnerInvitation %q: %w", link.Spec.Invitation, err)
	}
	// Only a registered partner is accepted: the link makes its domain a
	// partner domain (authz), which no tenant may do on its own.
	errs, err := registered(ctx, v.reader, domain, field.NewPath("spec", "partnerDomain"))
	if err != nil {
		return nil, err
	}
	phase, _ := lifecycle.Judge(inv, nil, v.opts.Clock.Now())
	switch {
	case inv.Spec.PartnerDomain != link.Spec.PartnerDomain:
		errs = append(errs, field.Invalid(field.NewPath("spec", "partnerDomain"), domain,
			fmt.Sprintf("invitation %q is for %s", inv.Name, inv.Spec.PartnerDomain)))
	case phase == v1alpha1.InvitationAccepted:
		errs = append(errs, field.Forbidden(invPath, fmt.Sprintf("invitation %q was already accepted", inv.Name)))
	case phase == v1alpha1.InvitationExpired:
		errs = append(errs, field.Forbidden(invPath, fmt.Sprintf("invitation %q expired at %s",
			inv.Name, lifecycle.ExpiresAt(inv).UTC().Format(time.RFC3339))))
	case link.Annotations[v1alpha1.AnnotationInvitationUID] != string(inv.UID):
		// The mutating webhook recorded the UID of the invitation it read;
		// the invitation was replaced since, or the webhook did not run.
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(v1alpha1.AnnotationInvitationUID),
			link.Annotations[v1alpha1.AnnotationInvitationUID],
			fmt.Sprintf("must be the UID of invitation %q (%s), which the admission webhook records: the invitation was replaced while the link was admitted; create the link again", inv.Name, inv.UID)))
	}
	for i, s := range link.Spec.PrimaryAdmins {
		errs = append(errs, validateMember(s, domain, field.NewPath("spec", "primaryAdmins").Index(i))...)
	}
	if len(errs) == 0 {
		if err := v.onePartnership(ctx, link); err != nil {
			return nil, err
		}
	}
	return nil, invalid(link, "PartnerLink", errs)
}

// onePartnership refuses a second live partnership of one domain in one
// namespace. The access label is per domain, so two links of one domain
// would share it; one live partnership per partner and tenant is also how
// Teams Rooms Pro relates them. (The index also denies a list by the label
// to a caller that does not cover every active link of its domain, should a
// race admit two.)
func (v *linkValidator) onePartnership(ctx context.Context, link *v1alpha1.PartnerLink) error {
	var links v1alpha1.PartnerLinkList
	if err := v.reader.List(ctx, &links, client.InNamespace(link.Namespace)); err != nil {
		return fmt.Errorf("listing the PartnerLinks of namespace %q: %w", link.Namespace, err)
	}
	for _, other := range links.Items {
		// An Expired link is a record, not a partnership: a new invitation
		// starts a new relationship next to it.
		if other.Name != link.Name && other.Spec.PartnerDomain == link.Spec.PartnerDomain && other.DeletionTimestamp.IsZero() &&
			other.Status.Phase != v1alpha1.LinkExpired {
			return forbidden(link, "partnerlinks", fmt.Sprintf(
				"%s already has a partnership in namespace %q: PartnerLink %q; a partner has one live partnership per tenant: change its RoomAssignments, or delete it first",
				link.Spec.PartnerDomain, link.Namespace, other.Name))
		}
	}
	return nil
}

func (v *linkValidator) ValidateUpdate(ctx context.Context, oldLink, link *v1alpha1.PartnerLink) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	// The CRD keeps invitation and partnerDomain immutable.
	errs := requestedByUnchanged(who, v.opts, oldLink, link)
	if key := v1alpha1.AnnotationInvitationUID; oldLink.Annotations[key] != link.Annotations[key] {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "annotations").Key(key),
			"records the invitation the link was created to accept; it cannot be changed"))
	}
	for i, s := range link.Spec.PrimaryAdmins {
		errs = append(errs, validateMember(s, string(link.Spec.PartnerDomain), field.NewPath("spec", "primaryAdmins").Index(i))...)
	}
	return nil, invalid(link, "PartnerLink", errs)
}

func (v *linkValidator) ValidateDelete(context.Context, *v1alpha1.PartnerLink) (admission.Warnings, error) {
	return nil, nil // either side may end the relationship
}

// validateMember checks that a subject is a member a role of the domain's
// link may hold (authz.ParseMember, the one definition the index uses too).
func validateMember(s v1alpha1.Subject, domain string, path *field.Path) field.ErrorList {
	_, err := authz.ParseMember(s, domain)
	switch {
	case err == nil:
		return nil
	case err.Field == "kind":
		return field.ErrorList{field.NotSupported(path.Child("kind"), s.Kind, []string{string(v1alpha1.UserSubject), string(v1alpha1.GroupSubject)})}
	case err.Forbidden:
		return field.ErrorList{field.Forbidden(path.Child("name"), err.Detail)}
	}
	return field.ErrorList{field.Invalid(path.Child("name"), s.Name, err.Detail)}
}
