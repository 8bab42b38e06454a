package admission

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// roleValidator keeps partner roles inside the partner: members of its own
// domain, permissions of the primary-admin set, and a built-in role that the
// operator alone owns and that always keeps a member. A partner's write in
// the roles category, Manual on its invitation, is held for the customer's
// approval.
type roleValidator struct{ changes }

func (v *roleValidator) ValidateCreate(ctx context.Context, role *v1alpha1.PartnerRole) (admission.Warnings, error) {
	return nil, v.validate(ctx, nil, role)
}

func (v *roleValidator) ValidateUpdate(ctx context.Context, oldRole, role *v1alpha1.PartnerRole) (admission.Warnings, error) {
	return nil, v.validate(ctx, oldRole, role)
}

func (v *roleValidator) validate(ctx context.Context, oldRole, role *v1alpha1.PartnerRole) error {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return err
	}
	checked, reason, reasonSet := role, "", false
	if who.partner != nil {
		checked, reason, reasonSet = withoutReason(oldRole, role, oldRole == nil)
	}
	link, specChanged, err := v.check(ctx, who, oldRole, checked)
	if err != nil {
		return err
	}
	held := false
	if who.partner != nil && specChanged { // a metadata-only change grants nothing: never held
		if held, err = v.manual(ctx, link, v1alpha1.CategoryRoles); err != nil {
			return err
		}
	}
	if !held {
		if reasonSet {
			return invalid(role, "PartnerRole", reasonNotHeld())
		}
		return nil
	}
	w := write{
		who: who, link: link.Name, category: v1alpha1.CategoryRoles, operation: v1alpha1.OperationCreate,
		resource: "partnerroles", kind: kindPartnerRole, name: role.Name, namespace: role.Namespace,
		object: checked, reason: reason, dryRun: dryRun(ctx),
	}
	if oldRole != nil {
		w.operation, w.base = v1alpha1.OperationUpdate, oldRole.ResourceVersion
	}
	return v.hold(ctx, w)
}

// check is every check of a direct create (oldRole nil) or update of a
// role. It returns the role's link and whether the spec changes (a create
// always does); a refusal is an error.
func (v *roleValidator) check(ctx context.Context, who requester, oldRole, role *v1alpha1.PartnerRole) (*v1alpha1.PartnerLink, bool, error) {
	spec := field.NewPath("spec")
	if who.partner != nil {
		old := oldRole
		if old == nil {
			old = &v1alpha1.PartnerRole{} // a create
		}
		if errs := validatePartnerMetadata(ownLabels, old, role); len(errs) > 0 {
			return nil, false, invalid(role, "PartnerRole", errs)
		}
	}
	if oldRole != nil && equality.Semantic.DeepEqual(oldRole.Spec, role.Spec) {
		// A metadata-only change (labels, owner references) of a role whose
		// link may be gone already: only the stamp needs guarding.
		return nil, false, invalid(role, "PartnerRole", requestedByUnchanged(who, v.opts, oldRole, role))
	}
	link, err := getLink(ctx, v.reader, role.Namespace, role.Spec.PartnerLink)
	if err != nil {
		return nil, false, err
	}
	// A link that is being deleted takes its roles with it: a role created
	// now would outlive the offboarding's list of them.
	if link == nil || oldRole == nil && !link.DeletionTimestamp.IsZero() {
		return nil, false, invalid(role, "PartnerRole", field.ErrorList{field.NotFound(spec.Child("partnerLink"), role.Spec.PartnerLink)})
	}
	var held []authz.Holding
	if who.partner != nil {
		var refusal string
		if held, refusal = writerHoldings(v.opts, role.Namespace, link, who); refusal != "" {
			return nil, false, forbidden(role, "partnerroles", refusal)
		}
	}
	return link, true, invalid(role, "PartnerRole", roleErrs(who, v.opts, oldRole, role, link, held))
}

// roleErrs lists what a create (oldRole nil) or update of a role of link
// breaks beyond who may write it: a partner writer's escalation (held is
// what it holds on the link; nil for others), the operator's builtin, the
// permissions partners may hold, members of the link's domain, scopes, the
// primary-admin invariant and the requested-by stamp.
func roleErrs(who requester, opts Options, oldRole, role *v1alpha1.PartnerRole, link *v1alpha1.PartnerLink, held []authz.Holding) field.ErrorList {
	spec := field.NewPath("spec")
	domain := string(link.Spec.PartnerDomain)
	var errs field.ErrorList
	if who.partner != nil {
		errs = append(errs, validateNoEscalation(held, role.Spec, spec)...)
	}
	builtinChanged := oldRole == nil && role.Spec.Builtin != "" || oldRole != nil && oldRole.Spec.Builtin != role.Spec.Builtin
	if builtinChanged && !who.is(opts.OperatorUser) {
		errs = append(errs, field.Forbidden(spec.Child("builtin"), "builtin is set by the operator only"))
	}
	for i, p := range role.Spec.Permissions {
		if !slices.Contains(v1alpha1.PrimaryAdminPermissions, p) {
			errs = append(errs, field.NotSupported(spec.Child("permissions").Index(i), p, permissionNames()))
		}
	}
	members := 0
	for i, a := range role.Spec.Assignments {
		path := spec.Child("assignments").Index(i)
		for j, m := range a.Members {
			errs = append(errs, validateMember(m, domain, path.Child("members").Index(j))...)
		}
		members += len(a.Members)
		errs = append(errs, validateScope(a.Scope, path.Child("scope"))...)
		errs = append(errs, validateWindow(a, path)...)
	}
	// The CRD's CEL rule says the same; this check also judges a held
	// change (a PartnerChangeRequest's object), which no schema sees
	// until the operator applies it.
	if role.Spec.Builtin == v1alpha1.BuiltinPrimaryAdmin && role.Spec.PermanentMembers() == 0 {
		msg := "removing the last primary admin is not allowed: a partner always has at least one primary admin"
		if members > 0 {
			msg = "the built-in primary-admin role must keep at least one member in an assignment without validFrom or validUntil: " +
				"a partner always has a primary admin, whatever the time"
		}
		errs = append(errs, field.Required(spec.Child("assignments"), msg))
	}
	if oldRole != nil {
		errs = append(errs, requestedByUnchanged(who, opts, oldRole, role)...)
	}
	return errs
}

// validateWindow checks an assignment's window [validFrom, validUntil): it
// must not be empty. A window only ever narrows what the assignment grants
// (nothing outside it), so it needs no permission beyond the role write.
func validateWindow(a v1alpha1.RoleAssignment, path *field.Path) field.ErrorList {
	if a.ValidFrom == nil || a.ValidUntil == nil || a.ValidFrom.Before(a.ValidUntil) {
		return nil
	}
	return field.ErrorList{field.Invalid(path.Child("validUntil"), a.ValidUntil.UTC().Format(time.RFC3339),
		fmt.Sprintf("validUntil must be later than validFrom (%s): the window is [validFrom, validUntil)", a.ValidFrom.UTC().Format(time.RFC3339)))}
}

// ValidateDelete protects the built-in role while its link is alive and its
// namespace is not being deleted: the operator deletes it itself when it
// offboards the partner. A partner's delete in the roles category, Manual
// on its invitation, is held.
func (v *roleValidator) ValidateDelete(ctx context.Context, role *v1alpha1.PartnerRole) (admission.Warnings, error) {
	who, err := v.opts.requester(ctx)
	if err != nil {
		return nil, err
	}
	if who.is(v.opts.OperatorUser) {
		return nil, nil
	}
	link, err := getLink(ctx, v.reader, role.Namespace, role.Spec.PartnerLink)
	if err != nil {
		return nil, err
	}
	if who.partner != nil {
		if refusal := partnerDeleteRefusal(v.opts, role, link, who); refusal != "" {
			return nil, forbidden(role, "partnerroles", refusal)
		}
	}
	if refusal, err := v.builtinDeleteRefusal(ctx, who, role, link); refusal != "" || err != nil {
		if err != nil {
			return nil, err
		}
		return nil, forbidden(role, "partnerroles", refusal)
	}
	if who.partner == nil {
		return nil, nil
	}
	held, err := v.manual(ctx, link, v1alpha1.CategoryRoles)
	if err != nil || !held {
		return nil, err
	}
	return nil, v.hold(ctx, write{
		who: who, link: link.Name, category: v1alpha1.CategoryRoles, operation: v1alpha1.OperationDelete,
		resource: "partnerroles", kind: kindPartnerRole, name: role.Name, namespace: role.Namespace,
		base: role.ResourceVersion, dryRun: dryRun(ctx),
	})
}

// partnerDeleteRefusal says why a partner may not delete the role of link
// (nil when gone), or "".
func partnerDeleteRefusal(opts Options, role *v1alpha1.PartnerRole, link *v1alpha1.PartnerLink, who requester) string {
	if link == nil {
		return fmt.Sprintf("PartnerLink %q does not exist: only the customer deletes roles of a gone link", role.Spec.PartnerLink)
	}
	_, refusal := writerHoldings(opts, role.Namespace, link, who)
	return refusal
}

// builtinDeleteRefusal says why the built-in primary-admin role may not be
// deleted now, or "".
func (v *roleValidator) builtinDeleteRefusal(ctx context.Context, who requester, role *v1alpha1.PartnerRole, link *v1alpha1.PartnerLink) (string, error) {
	if role.Spec.Builtin != v1alpha1.BuiltinPrimaryAdmin || link == nil || !link.DeletionTimestamp.IsZero() {
		return "", nil
	}
	// A namespace that is being deleted takes the link too: the namespace
	// controller deletes every object in it, in no particular order, and
	// refusing the role first would only keep the namespace Terminating
	// until the controller reached the link. (Nothing can be created in
	// such a namespace, so the operator could not restore the role anyway.)
	// The exception is for the namespace's deletion: partners, who cannot
	// delete namespaces, keep the invariant.
	if who.partner == nil {
		if terminating, err := namespaceTerminating(ctx, v.reader, role.Namespace); terminating || err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("the built-in primary-admin role cannot be deleted while PartnerLink %q exists: a partner always has a primary admin; delete the PartnerLink to offboard the partner", link.Name), nil
}

// writerHoldings returns what a partner writer holds on the role's link,
// or why it may not write the link's roles: unless that includes
// roles.modify. A partner writes roles only of a link it holds roles.modify
// on itself, not of any link of its domain.
func writerHoldings(opts Options, namespace string, link *v1alpha1.PartnerLink, who requester) ([]authz.Holding, string) {
	if who.partner.Domain != string(link.Spec.PartnerDomain) {
		return nil, fmt.Sprintf("%s may only write roles of its own partner links; %q is %s's", who.name, link.Name, link.Spec.PartnerDomain)
	}
	held := opts.Holdings(namespace, who.name, who.groups, link.Name)
	if !holds(held, v1alpha1.RolesModify) {
		return nil, fmt.Sprintf("%s holds no roles.modify on PartnerLink %q: it writes only roles of links on which its own roles grant roles.modify", who.name, link.Name)
	}
	return held, ""
}

// getLink returns a namespace's PartnerLink, read live, or nil when it does
// not exist.
func getLink(ctx context.Context, r client.Reader, namespace, name string) (*v1alpha1.PartnerLink, error) {
	link := &v1alpha1.PartnerLink{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, link); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading PartnerLink %q: %w", name, err)
	}
	return link, nil
}

func permissionNames() []string {
	names := make([]string, 0, len(v1alpha1.PrimaryAdminPermissions))
	for _, p := range v1alpha1.PrimaryAdminPermissions {
		names = append(names, string(p))
	}
	return names
}

// namespaceTerminating reports whether the namespace is being deleted, read
// live: the namespace controller's deletes follow the namespace's deletion
// by moments. A namespace not found is not (its objects cannot outlive it).
func namespaceTerminating(ctx context.Context, r client.Reader, name string) (bool, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating, nil
}
