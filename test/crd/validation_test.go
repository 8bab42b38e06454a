package crd_test

import (
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// manifest parses a YAML manifest into an object in the test namespace.
func manifest(y string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(y), &obj.Object)).To(Succeed())
	obj.SetNamespace(namespace)
	return obj
}

// expectRejected creates obj and asserts that the apiserver refuses it as
// invalid, with a message naming field and containing reason, and stores nothing.
func expectRejected(obj *unstructured.Unstructured, field, reason string) {
	GinkgoHelper()
	err := k8sClient.Create(ctx, obj)
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	Expect(err.Error()).To(ContainSubstring(field))
	Expect(err.Error()).To(ContainSubstring(reason))
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(obj.GroupVersionKind())
	Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored))).To(BeTrue(), "nothing may be stored")
}

// expectAccepted creates obj, reads it back and returns what was stored.
func expectAccepted(obj *unstructured.Unstructured) *unstructured.Unstructured {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, obj)).To(Succeed())
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(obj.GroupVersionKind())
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, stored))).To(Succeed()) })
	return stored
}

// field reads a nested field of a stored object.
func field(obj *unstructured.Unstructured, path ...string) any {
	GinkgoHelper()
	value, found, err := unstructured.NestedFieldNoCopy(obj.Object, path...)
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue(), "field %v must be stored", path)
	return value
}

// with returns a copy of a base manifest with one part replaced. It runs while
// the spec tree is built, before Gomega can fail a spec, so a replacement that
// does not apply panics: a typo must not turn into a test of the valid manifest.
func with(base, old, new string) string {
	if !strings.Contains(base, old) {
		panic("test manifest does not contain " + old)
	}
	return strings.Replace(base, old, new, 1)
}

const validInvitation = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerInvitation
metadata:
  name: contoso
spec:
  partnerDomain: contoso.com
  expiryDays: 14
  rooms:
    selector:
      matchLabels:
        country: us
  termsAccepted: true
`

const validLink = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerLink
metadata:
  name: contoso
spec:
  invitation: contoso
  partnerDomain: contoso.com
  primaryAdmins:
  - kind: User
    name: alice@contoso.com
  - kind: Group
    name: contoso.com:admins
`

const validRole = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerRole
metadata:
  name: contoso-helpdesk
spec:
  partnerLink: contoso
  permissions: [rooms.view, tickets.create, tickets.view, tickets.update]
  assignments:
  - name: nyc
    members:
    - kind: Group
      name: contoso.com:helpdesk
    scope:
      selector:
        matchLabels:
          site: nyc
`

const validBuiltinRole = `
apiVersion: partners.roompro.io/v1alpha1
kind: PartnerRole
metadata:
  name: contoso-primary-admins
spec:
  partnerLink: contoso
  builtin: PrimaryAdmin
  permissions: [rooms.view]
  assignments:
  - name: primary-admins
    members:
    - kind: User
      name: alice@contoso.com
`

const validAssignment = `
apiVersion: partners.roompro.io/v1alpha1
kind: RoomAssignment
metadata:
  name: contoso-extra
spec:
  partnerLink: contoso
  rooms:
    names: [conf-a, conf-b]
`

const validRoom = `
apiVersion: partners.roompro.io/v1alpha1
kind: Room
metadata:
  name: conf-a
  labels:
    country: us
spec:
  displayName: Conference A
  site: nyc
  country: US
  groups: [floor-1]
  updateRing: general
`

var _ = Describe("valid objects", func() {
	It("stores an invitation as written and defaults approvals to Auto", func() {
		stored := expectAccepted(manifest(validInvitation))
		Expect(field(stored, "spec", "partnerDomain")).To(Equal("contoso.com"))
		Expect(field(stored, "spec", "expiryDays")).To(BeEquivalentTo(int64(14)))
		for _, category := range []string{"rooms", "roles", "tickets", "settings"} {
			Expect(field(stored, "spec", "approvals", category)).To(Equal("Auto"), category)
		}
	})

	It("accepts both ends of the expiry range", func() {
		expectAccepted(manifest(with(with(validInvitation, "expiryDays: 14", "expiryDays: 1"), "name: contoso", "name: one-day")))
		expectAccepted(manifest(with(with(validInvitation, "expiryDays: 14", "expiryDays: 30"), "name: contoso", "name: thirty-days")))
	})

	It("stores a link, a role, a built-in role, an assignment and a room", func() {
		link := expectAccepted(manifest(validLink))
		Expect(field(link, "spec", "primaryAdmins")).To(HaveLen(2))
		role := expectAccepted(manifest(validRole))
		Expect(field(role, "spec", "permissions")).To(ConsistOf("rooms.view", "tickets.create", "tickets.view", "tickets.update"))
		builtin := expectAccepted(manifest(validBuiltinRole))
		Expect(field(builtin, "spec", "builtin")).To(Equal("PrimaryAdmin"))
		assignment := expectAccepted(manifest(validAssignment))
		Expect(field(assignment, "spec", "rooms", "names")).To(Equal([]any{"conf-a", "conf-b"}))
		room := expectAccepted(manifest(validRoom))
		Expect(field(room, "spec", "country")).To(Equal("US"))
	})

	It("lets a role hold every primary-admin permission and no other", func() {
		// Keeps the CEL rule's list in step with v1alpha1.PrimaryAdminPermissions.
		var all []string
		for _, p := range v1alpha1.PrimaryAdminPermissions {
			all = append(all, string(p))
		}
		role := manifest(validRole)
		Expect(unstructured.SetNestedStringSlice(role.Object, all, "spec", "permissions")).To(Succeed())
		expectAccepted(role)

		for _, p := range v1alpha1.AllPermissions {
			if slices.Contains(v1alpha1.PrimaryAdminPermissions, p) {
				continue
			}
			role := manifest(with(validRole, "name: contoso-helpdesk", "name: contoso-too-much"))
			Expect(unstructured.SetNestedStringSlice(role.Object, []string{string(p)}, "spec", "permissions")).To(Succeed())
			expectRejected(role, "spec.permissions", "a partner role may hold only the primary-admin permissions")
		}
	})
})

var _ = DescribeTable("invalid objects are rejected with the field named, and nothing is stored",
	func(y, field, reason string) { expectRejected(manifest(y), field, reason) },

	// PartnerInvitation
	Entry("expiryDays 0", with(validInvitation, "expiryDays: 14", "expiryDays: 0"), "spec.expiryDays", "greater than or equal to 1"),
	Entry("expiryDays 31", with(validInvitation, "expiryDays: 14", "expiryDays: 31"), "spec.expiryDays", "less than or equal to 30"),
	Entry("expiryDays missing", with(validInvitation, "expiryDays: 14", ""), "spec.expiryDays", "Required value"),
	Entry("expiryDays of the wrong type", with(validInvitation, "expiryDays: 14", `expiryDays: "two weeks"`), "spec.expiryDays", "must be of type integer"),
	Entry("a domain without a dot", with(validInvitation, "partnerDomain: contoso.com", "partnerDomain: contoso"), "spec.partnerDomain", "lower-case DNS domain name with at least one dot"),
	Entry("an upper-case domain", with(validInvitation, "partnerDomain: contoso.com", "partnerDomain: Contoso.com"), "spec.partnerDomain", "lower-case DNS domain name"),
	Entry("a domain with a bad character", with(validInvitation, "partnerDomain: contoso.com", "partnerDomain: con_toso.com"), "spec.partnerDomain", "lower-case DNS domain name"),
	Entry("a domain longer than a label name", with(validInvitation, "partnerDomain: contoso.com", "partnerDomain: "+strings.Repeat("a", 60)+".com"), "spec.partnerDomain", "may not be more than 63"),
	Entry("termsAccepted false", with(validInvitation, "termsAccepted: true", "termsAccepted: false"), "spec.termsAccepted", "must be true"),
	Entry("termsAccepted missing", with(validInvitation, "termsAccepted: true", ""), "spec.termsAccepted", "Required value"),
	Entry("an empty room scope", with(validInvitation, "rooms:\n    selector:\n      matchLabels:\n        country: us", "rooms: {}"), "spec.rooms", "rooms needs names, a selector, or both"),
	Entry("an empty names list", with(validInvitation, "rooms:\n    selector:\n      matchLabels:\n        country: us", "rooms:\n    names: []"), "spec.rooms", "rooms needs names, a selector, or both"),
	Entry("a selector with an unknown operator", with(validInvitation, "matchLabels:\n        country: us", "matchExpressions:\n      - {key: country, operator: Like, values: [us]}"), "spec.rooms", "operator must be one of In, NotIn, Exists, DoesNotExist"),
	Entry("an In selector without values", with(validInvitation, "matchLabels:\n        country: us", "matchExpressions:\n      - {key: country, operator: In}"), "spec.rooms", "values must be non-empty for In and NotIn"),
	Entry("a room name that is not a DNS name", with(validInvitation, "rooms:\n    selector:\n      matchLabels:\n        country: us", "rooms:\n    names: [Conf_A]"), "spec.rooms.names[0]", "should match"),
	Entry("an unknown approval mode", with(validInvitation, "termsAccepted: true", "termsAccepted: true\n  approvals:\n    rooms: Sometimes"), "spec.approvals.rooms", `supported values: "Auto", "Manual"`),

	// PartnerLink
	Entry("a link without primary admins", with(validLink, "primaryAdmins:\n  - kind: User\n    name: alice@contoso.com\n  - kind: Group\n    name: contoso.com:admins", "primaryAdmins: []"), "spec.primaryAdmins", "at least 1 item"),
	Entry("a link named unlike its invitation", with(validLink, "invitation: contoso", "invitation: other"), "spec.invitation must equal metadata.name", "named like the invitation"),
	Entry("a primary admin of another domain", with(validLink, "name: alice@contoso.com", "name: mallory@fabrikam.com"), "spec", "of the link's own partnerDomain"),
	Entry("a subject of an unknown kind", with(validLink, "kind: User", "kind: Robot"), "spec.primaryAdmins[0].kind", `supported values: "User", "Group"`),
	Entry("a user that is not a UPN", with(validLink, "name: alice@contoso.com", "name: alice"), "spec.primaryAdmins[0]", "a User subject is named by a UPN"),
	Entry("a group without a domain", with(validLink, "name: contoso.com:admins", "name: admins"), "spec.primaryAdmins[1]", "a Group subject is named <partner-domain>:<group>"),
	Entry("a system: group", with(validLink, "name: contoso.com:admins", "name: system:masters"), "spec.primaryAdmins[1]", "system: users and groups are never partner subjects"),

	// PartnerRole
	Entry("an unknown permission", with(validRole, "[rooms.view,", "[rooms.fly,"), "spec.permissions[0]", "Unsupported value"),
	Entry("a permission partners cannot hold", with(validRole, "[rooms.view,", "[rooms.resetKey,"), "spec.permissions", "a partner role may hold only the primary-admin permissions"),
	Entry("settings.modify", with(validRole, "[rooms.view,", "[settings.modify,"), "spec.permissions", "a partner role may hold only the primary-admin permissions"),
	Entry("a built-in role with another name", with(validBuiltinRole, "name: contoso-primary-admins", "name: admins"), "must be named <partnerLink>-primary-admins", "PrimaryAdmin"),
	Entry("a built-in role without members", with(validBuiltinRole, "members:\n    - kind: User\n      name: alice@contoso.com", "members: []"), "spec", "must keep at least one member"),
	Entry("an unknown builtin", with(validBuiltinRole, "builtin: PrimaryAdmin", "builtin: Owner"), "spec.builtin", `supported values: "PrimaryAdmin"`),
	Entry("a role assignment with a bad name", with(validRole, "name: nyc", "name: New York"), "spec.assignments[0].name", "should match"),
	Entry("a member that is a system: user", with(validRole, "name: contoso.com:helpdesk", "name: system:admin"), "spec.assignments[0].members[0]", "never partner subjects"),

	// RoomAssignment
	Entry("an assignment without rooms", with(validAssignment, "rooms:\n    names: [conf-a, conf-b]", "rooms: {}"), "spec.rooms", "rooms needs names, a selector, or both"),
	Entry("an assignment without a link", with(validAssignment, "partnerLink: contoso", ""), "spec.partnerLink", "Required value"),

	// Room
	Entry("a room without a display name", with(validRoom, "displayName: Conference A", ""), "spec.displayName", "Required value"),
	Entry("a three-letter country", with(validRoom, "country: US", "country: USA"), "spec.country", "ISO 3166-1 alpha-2"),
	Entry("a lower-case country", with(validRoom, "country: US", "country: us"), "spec.country", "ISO 3166-1 alpha-2"),
)

var _ = Describe("immutable fields", func() {
	It("refuses to retarget an invitation or change its expiry", func() {
		inv := expectAccepted(manifest(with(validInvitation, "name: contoso", "name: immutable")))
		Expect(unstructured.SetNestedField(inv.Object, "fabrikam.com", "spec", "partnerDomain")).To(Succeed())
		err := k8sClient.Update(ctx, inv)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.partnerDomain"))
		Expect(err.Error()).To(ContainSubstring("partnerDomain is immutable"))

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(inv), inv)).To(Succeed())
		Expect(unstructured.SetNestedField(inv.Object, int64(20), "spec", "expiryDays")).To(Succeed())
		err = k8sClient.Update(ctx, inv)
		Expect(err).To(MatchError(ContainSubstring("expiryDays is immutable")))
	})

	It("refuses a role named unlike its link, or under a built-in role's name", func() {
		expectRejected(manifest(with(validRole, "name: contoso-helpdesk", "name: helpdesk")), "", "a PartnerRole is named <partnerLink>-<name>")
		expectRejected(manifest(with(validRole, "name: contoso-helpdesk", "name: fabrikam-helpdesk")), "", "a PartnerRole is named <partnerLink>-<name>")
		expectRejected(manifest(with(validRole, "name: contoso-helpdesk", "name: contoso-x-primary-admins")), "", "belong to the built-in roles")
	})

	It("refuses to set or clear builtin on an existing role", func() {
		role := expectAccepted(manifest(validRole))
		Expect(unstructured.SetNestedField(role.Object, "PrimaryAdmin", "spec", "builtin")).To(Succeed())
		err := k8sClient.Update(ctx, role)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("builtin is immutable"))
	})
})
