// Package admission holds the defaulting and validating admission webhooks
// of the API's kinds: the rules that need another object or the requesting
// user, which the CRD schema cannot check. Every rejection names the field and
// what is allowed, and a rejected request changes nothing.
package admission

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authz"
)

// Options configure the webhooks.
type Options struct {
	// OperatorUser is the username of the operator's own client: only it may
	// set operator-owned fields (spec.builtin, room access labels, the
	// requested-by annotation) and delete a live link's built-in role.
	OperatorUser string
	// Clock judges invitation expiry. Default: the real clock.
	Clock clock.PassiveClock
	// IsPartnerDomain reports whether a domain is a partner's (registered by
	// a PartnerOrganization, or named by a link): a UPN of any other domain
	// is the customer's own staff. Default: every domain is a partner's,
	// which fails closed.
	IsPartnerDomain func(domain string) bool
	// TenantManagerGroup is the group suffix of tenant managers. Default:
	// authz.DefaultTenantManagerGroup.
	TenantManagerGroup string
	// Holdings tells what a partner user holds on a link (authz.Index.
	// Holdings). Default: nothing, which refuses every partner role write.
	Holdings func(namespace, user string, groups []string, link string) []authz.Holding
	// Decide answers an authorization request as the authorization webhook
	// does (authz.Index.Decide): a partner's change request for a room is
	// admitted, and applied, only while Decide allows the requester to
	// update the room. Default: Deny, which refuses every such request.
	Decide func(*authz.Request) authz.Decision
}

// withDefaults fills the options left unset.
func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.TenantManagerGroup == "" {
		o.TenantManagerGroup = authz.DefaultTenantManagerGroup
	}
	if o.IsPartnerDomain == nil {
		o.IsPartnerDomain = func(string) bool { return true }
	}
	if o.Holdings == nil {
		o.Holdings = func(string, string, []string, string) []authz.Holding { return nil }
	}
	if o.Decide == nil {
		o.Decide = func(*authz.Request) authz.Decision {
			return authz.Decision{Verdict: authz.Deny, Reason: "the admission webhooks have no authorization index"}
		}
	}
	return o
}

// The apiserver waits 5 s for an answer (timeoutSeconds), less than the
// webhook server's own deadline (webhookserver.DefaultRequestTimeout, 10 s):
// the apiserver gives up first and says the webhook timed out, and the
// server never cuts off an answer the apiserver still waits for.
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-room,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=rooms,verbs=create,versions=v1alpha1,name=mroom.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-partnerinvitation,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerinvitations,verbs=create,versions=v1alpha1,name=mpartnerinvitation.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-partnerlink,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerlinks,verbs=create,versions=v1alpha1,name=mpartnerlink.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-partnerrole,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerroles,verbs=create,versions=v1alpha1,name=mpartnerrole.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/mutate-partners-roompro-io-v1alpha1-roomassignment,mutating=true,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=roomassignments,verbs=create,versions=v1alpha1,name=mroomassignment.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-room,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=partners.roompro.io,resources=rooms,verbs=create;update,versions=v1alpha1,name=vroom.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-partnerinvitation,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerinvitations,verbs=create;update,versions=v1alpha1,name=vpartnerinvitation.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-partnerlink,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerlinks,verbs=create;update,versions=v1alpha1,name=vpartnerlink.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-partnerrole,mutating=false,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=partners.roompro.io,resources=partnerroles,verbs=create;update;delete,versions=v1alpha1,name=vpartnerrole.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-partnerorganization,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=partnerorganizations,verbs=delete,versions=v1alpha1,name=vpartnerorganization.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-partners-roompro-io-v1alpha1-roomassignment,mutating=false,failurePolicy=fail,sideEffects=None,groups=partners.roompro.io,resources=roomassignments,verbs=create;update;delete,versions=v1alpha1,name=vroomassignment.partners.roompro.io,admissionReviewVersions=v1,timeoutSeconds=5

// SetupWithManager registers the webhooks on the manager's webhook server.
// Validators read other objects with the API reader, not the cache: an
// invitation created a moment ago must be found.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	r := mgr.GetAPIReader()
	ch := changes{reader: r, modes: mgr.GetCache(), writer: mgr.GetClient(), opts: opts}
	for _, kind := range []string{"room", "partnerinvitation", "partnerrole", "roomassignment"} {
		mgr.GetWebhookServer().Register("/mutate-partners-roompro-io-v1alpha1-"+kind, &webhook.Admission{Handler: stamper{}})
	}
	mgr.GetWebhookServer().Register("/mutate-partners-roompro-io-v1alpha1-partnerlink", &webhook.Admission{Handler: stamper{more: linkInvitationUID(r)}})
	mgr.GetWebhookServer().Register("/mutate-partners-roompro-io-v1alpha1-partnerchangerequest", &webhook.Admission{Handler: pcrStamper{opts: opts}})
	for _, kind := range []string{"ticket", "roomreport"} {
		mgr.GetWebhookServer().Register("/mutate-partners-roompro-io-v1alpha1-"+kind, &webhook.Admission{Handler: roomLabeler{}})
	}
	register := []func() error{
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.Room{}).
				WithValidator(&roomValidator{ch}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.PartnerInvitation{}).
				WithValidator(&invitationValidator{reader: r, opts: opts}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.PartnerLink{}).
				WithValidator(&linkValidator{reader: r, opts: opts}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.PartnerRole{}).
				WithValidator(&roleValidator{ch}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.PartnerChangeRequest{}).
				WithValidator(&pcrValidator{changes: ch, reviews: mgr.GetClient()}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.PartnerOrganization{}).
				WithValidator(&organizationValidator{reader: r, opts: opts}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.RoomAssignment{}).
				WithValidator(&assignmentValidator{reader: r, opts: opts}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.Ticket{}).
				WithValidator(&ticketValidator{ch}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.RoomReport{}).
				WithValidator(&reportValidator{opts: opts}).Complete()
		},
		func() error {
			return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.UpdateRing{}).
				WithValidator(&ringValidator{opts: opts}).Complete()
		},
	}
	for _, f := range register {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// requester is who sent the admission request.
type requester struct {
	name   string
	groups []string
	// partner is set when the user is a partner user: a UPN of a partner
	// domain, or a name that falls under one without being well-formed
	// (authz.Malformed), which then meets every partner restriction and
	// holds nothing.
	partner *authz.Identity
	// upn is set for every UPN, partner or not (a tenant manager accepting
	// the first invitation of its domain is a UPN of a partner domain).
	upn *authz.Identity
}

func (o Options) requester(ctx context.Context) (requester, error) {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return requester{}, fmt.Errorf("reading the admission request: %w", err)
	}
	return o.classify(req.UserInfo.Username, req.UserInfo.Groups), nil
}

// classify is the requester a user and its groups are.
func (o Options) classify(user string, groups []string) requester {
	r := requester{name: user, groups: groups}
	id, class := authz.Classify(user, groups, o.IsPartnerDomain)
	if id.User != "" { // a well-formed UPN, partner or not
		r.upn = &id
	}
	if class == authz.Partner || class == authz.Malformed {
		r.partner = &id
	}
	return r
}

func (r requester) is(user string) bool { return user != "" && r.name == user }

// invalid turns field errors into the apiserver's Invalid error of obj.
func invalid(obj client.Object, kind string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: kind}, obj.GetName(), errs)
}

// schemaGroupResource is a resource of this API.
func schemaGroupResource(resource string) schema.GroupResource {
	return schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: resource}
}

// forbidden is a refusal because of who asks.
func forbidden(obj client.Object, resource, reason string) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: resource}, obj.GetName(), fmt.Errorf("%s", reason))
}

// validateScope checks a RoomScope's selector as the apiserver would check
// a Deployment's.
func validateScope(s v1alpha1.RoomScope, path *field.Path) field.ErrorList {
	if s.Selector == nil {
		return nil
	}
	return metav1validation.ValidateLabelSelector(s.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))
}

// requestedByUnchanged keeps the requested-by annotation as the create
// stamped it: only the operator may change it.
func requestedByUnchanged(who requester, opts Options, oldObj, newObj client.Object) field.ErrorList {
	key := v1alpha1.AnnotationRequestedBy
	if who.is(opts.OperatorUser) || oldObj.GetAnnotations()[key] == newObj.GetAnnotations()[key] {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("metadata", "annotations").Key(key),
		"records who created the object; it cannot be changed")}
}
