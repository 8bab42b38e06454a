# The partner authorization rules of DESIGN.md ("Identities", "Permissions",
# "The authorization webhook"), as internal/authz implements them, for OPA.
#
# input: the request (see Input in world.go), with the user's extra and
# input.now, the moment of the decision in Unix nanoseconds (the index's
# clock; without it no role grants anything).
# data.partner: the objects (see Document in world.go), their moments in
# Unix nanoseconds too (null: no bound). verdict is "Allow", "Deny" or
# "NoOpinion"; the reasons of internal/authz are not reproduced.
package partner.authz

import rego.v1

api_group := "partners.roompro.io"

tenant_manager_group := "tenant-managers"

access_label_prefix := "access.partners.roompro.io/"

# The label admission sets on a PartnerChangeRequest from spec.partnerLink.
partner_link_label := "partners.roompro.io/partner-link"

# The most a partner can hold: a role's other permissions grant nothing.
primary_admin_permissions := {
	"rooms.view", "rooms.modify", "groups.view", "updateRings.view", "updateRings.modify",
	"reports.view", "tickets.create", "tickets.view", "tickets.update", "roles.view", "roles.modify",
}

# The verdict, rule by rule in the order of authz.Index.Decide: the caller,
# what the request needs, then the caller's grants where it acts.
verdict := "NoOpinion" if {
	not normalised # no domain at all: not a partner identity
} else := "Deny" if {
	# Fail closed until the data is complete.
	not data.partner.synced
} else := "NoOpinion" if {
	not under_partner # the customer's staff
} else := "Deny" if {
	not domain # under a partner domain, but not a well-formed user of one
} else := v if {
	input.path != ""
	v := path_verdict
} else := "Allow" if {
	self_review
} else := "Deny" if {
	not tenant
} else := "Deny" if {
	# Every request in a namespace meets the customer's session policy
	# there; discovery and self reviews, above, are in no namespace.
	session_unmet
} else := v if {
	tenant_manager_request
	v := tenant_manager_verdict
} else := v if {
	change_request_request
	v := change_request_verdict
} else := "Deny" if {
	not need
} else := "Deny" if {
	count(grants) == 0
} else := v if {
	need.roles
	v := roles_verdict
} else := v if {
	need.ring
	v := ring_verdict
} else := v if {
	need.room
	v := room_verdict
} else := "Allow"

# --- Identities

user := lower(input.user)

user_parts := split(user, "@")

# normalised is the domain a username is classified by: after its last @,
# lower-cased, trimmed, without a trailing dot. authz.NormalizedDomain also
# converts it to IDNA ASCII form; the policy ignores IDNA, which changes no
# ASCII name, and the bench's names are all ASCII.
normalised := d if {
	count(user_parts) > 1
	d := trim_suffix(trim_space(user_parts[count(user_parts) - 1]), ".")
	d != ""
}

# under_partner: the normalised domain is a partner domain or a sub-domain of
# one. As authz's partnerParent, the sub-domain test probes each parent of
# at least two labels (no top-level domain is a partner's) instead of
# scanning the partner domains.
under_partner if data.partner.domains[normalised]

under_partner if {
	labels := split(normalised, ".")
	n := count(labels)
	n >= 3
	some i in numbers.range(1, n - 2)
	data.partner.domains[concat(".", array.slice(labels, i, n))]
}

# domain is the caller's partner domain: defined only for a well-formed
# partner UPN, name@<partner-domain> exactly, with no @, colon, space or
# control character in the name (authz's isLocalPart: unicode.IsSpace and
# unicode.IsControl are \p{Z} and \p{Cc}; U+FFFD is what lower makes of
# invalid UTF-8).
domain := d if {
	count(user_parts) == 2
	user_parts[0] != ""
	not regex.match(`[:\p{Z}\p{Cc}\x{FFFD}]`, user_parts[0])
	d := user_parts[1]
	count(d) <= 253
	regex.match(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`, d)
	data.partner.domains[d]
}

# own_groups are the caller's groups of its own domain, "<domain>:<group>";
# groups of other domains grant nothing.
own_groups contains g if {
	prefix := concat("", [domain, ":"])
	some raw in input.groups
	g := lower(raw)
	startswith(g, prefix)
	count(g) > count(prefix)
}

# subjects are the keys of data's role members that name the caller.
subjects contains concat("", ["user:", user]) if domain

subjects contains concat("", ["group:", g]) if some g in own_groups

tenant := data.partner.namespaces[input.namespace]

# --- Non-resource and self-review requests

path_verdict := "Allow" if discovery else := "Deny"

# Discovery: get or head of exactly its documents.
discovery if {
	input.verb in {"get", "head"}
	input.path in {"/api", "/apis", "/version", "/openapi/v2", "/openapi/v3"}
}

discovery if {
	input.verb in {"get", "head"}
	p := discovery_path
	regex.match(`^/(api/[a-z0-9.-]+|apis/[a-z0-9.-]+(/[a-z0-9.-]+)?)$`, p)
	not regex.match(`(^|/)\.\.?(/|$)`, p)
}

# The OpenAPI v3 document of a group version has the discovery path's shape
# after /openapi/v3.
discovery_path := concat("", ["/", trim_prefix(input.path, "/openapi/v3/")]) if {
	startswith(input.path, "/openapi/v3/")
} else := input.path

self_review if {
	input.group == "authorization.k8s.io"
	input.resource in {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}
	input.verb == "create"
}

self_review if {
	input.group == "authentication.k8s.io"
	input.resource == "selfsubjectreviews"
	input.verb == "create"
}

# --- Session policy: PartnerInvitation spec.sessionPolicy.requiredExtra
#
# input.extra is the user's extra, key to values, as the authenticator set
# it. The policies of every invitation of the caller's domain in the
# namespace that is not Expired apply together: for each key, the extra
# holds one of the required values (keys and values compared exactly, case
# included).

session_unmet if {
	some name in tenant.policiesOfDomain[domain]
	inv := tenant.invitations[name]
	inv.phase != "Expired" # an expired invitation is a record: its policy no longer applies
	some key, values in inv.requiredExtra
	not holds_one_of(key, values)
}

holds_one_of(key, values) if {
	some v in input.extra[key]
	v in values
}

# --- Tenant managers: invitations and links

tenant_manager_request if {
	input.group == api_group
	input.subresource == ""
	input.resource in {"partnerinvitations", "partnerlinks"}
}

tenant_manager_verdict := "Allow" if {
	concat(":", [domain, tenant_manager_group]) in own_groups
	manager_may
} else := "Deny"

manager_may if {
	input.resource == "partnerinvitations"
	input.verb in {"get", "delete"}
	tenant.invitations[input.name].partnerDomain == domain
}

# Accepting an invitation: the admission webhook checks which one.
manager_may if {
	input.resource == "partnerlinks"
	input.verb == "create"
	some inv in tenant.invitations
	inv.partnerDomain == domain
	not inv.phase in {"Accepted", "Expired"}
}

manager_may if {
	input.resource == "partnerlinks"
	input.verb in {"get", "delete"}
	tenant.links[input.name].partnerDomain == domain
}

# kubectl apply reads a link before it creates it, under the invitation's name.
manager_may if {
	input.resource == "partnerlinks"
	input.verb == "get"
	tenant.invitations[input.name].partnerDomain == domain
}

# --- Permissions: what a request needs

room_permissions := {
	"get/": "rooms.view", "list/": "rooms.view", "watch/": "rooms.view",
	"update/": "rooms.modify", "patch/": "rooms.modify",
	"delete/": "rooms.unenroll",
	"get/key": "rooms.downloadKey",
	"create/resetkey": "rooms.resetKey",
	"create/tickets": "tickets.create",
	"get/tickets": "tickets.view", "list/tickets": "tickets.view",
	"update/tickets": "tickets.update", "patch/tickets": "tickets.update",
	"get/reports": "reports.view",
}

features := {"roomgroups": "groups", "settings": "settings"}

reads := {"get", "list", "watch"}

ticket_permissions := {
	"get": "tickets.view", "list": "tickets.view", "watch": "tickets.view",
	"update": "tickets.update", "patch": "tickets.update",
}

room_label := "partners.roompro.io/room"

feature_actions := {"get": "view", "list": "view", "watch": "view", "update": "modify", "patch": "modify", "create": "create"}

role_permissions := {
	"get": "roles.view", "list": "roles.view", "watch": "roles.view",
	"create": "roles.modify", "update": "roles.modify", "patch": "roles.modify", "delete": "roles.modify",
}

# need: the permission a request requires; room: it acts on the room it
# names; roles: it acts on partner roles.
need := {"permission": p, "room": true, "roles": false} if {
	input.group == api_group
	input.resource == "rooms"
	p := room_permissions[concat("/", [input.verb, input.subresource])]
}

# A create names no room yet.
need := {"permission": "rooms.create", "room": false, "roles": false} if {
	input.group == api_group
	input.resource == "rooms"
	input.verb == "create"
	input.subresource == ""
}

need := {"permission": concat(".", [features[input.resource], feature_actions[input.verb]]), "room": false, "roles": false} if {
	input.group == api_group
	input.subresource == ""
}

# Tickets and reports act on their room (target_room); a ticket create
# names none (admission checks spec.room). Partners never delete tickets,
# never write reports, never touch a subresource.
need := {"permission": ticket_permissions[input.verb], "room": true, "roles": false} if {
	input.group == api_group
	input.resource == "tickets"
	input.subresource == ""
}

need := {"permission": "tickets.create", "room": false, "roles": false} if {
	input.group == api_group
	input.resource == "tickets"
	input.subresource == ""
	input.verb == "create"
}

need := {"permission": "reports.view", "room": true, "roles": false} if {
	input.group == api_group
	input.resource == "roomreports"
	input.subresource == ""
	input.verb in reads
}

# Rings: read with updateRings.view; an update needs updateRings.modify on
# every room of the ring; never created or deleted by partners.
need := {"permission": "updateRings.view", "room": false, "roles": false} if {
	input.group == api_group
	input.resource == "updaterings"
	input.subresource == ""
	input.verb in reads
}

need := {"permission": "updateRings.modify", "room": false, "roles": false, "ring": true} if {
	input.group == api_group
	input.resource == "updaterings"
	input.subresource == ""
	input.verb in {"update", "patch"}
}

need := {"permission": role_permissions[input.verb], "room": false, "roles": true} if {
	input.group == api_group
	input.resource == "partnerroles"
	input.subresource == ""
}

# --- Grants: the caller's role assignments that hold the needed permission

grants contains {"link": link_name, "scope": a.scope} if {
	need.permission in primary_admin_permissions
	some link_name in tenant.linksOfDomain[domain]
	link := tenant.links[link_name]
	link.phase == "Active"
	not link.deleting # from the moment its delete is accepted, a link grants nothing
	some role_name in tenant.rolesOfLink[link_name]
	role := tenant.roles[role_name]
	not role.deleting
	role.permissions[need.permission]
	some a in role.assignments
	some s in subjects
	a.members[s]
	valid_scope(a.scope) # an invalid scope grants nothing
	in_force(link, a)
}

# --- Time: role windows and relationship ends, against input.now

# in_force: the assignment is inside its window [validFrom, validUntil) and
# the link's relationship has not ended.
in_force(link, a) if {
	reached(input.now, a.validFrom)
	before(input.now, a.validUntil)
	before(input.now, link_until(link))
}

# reached(now, t): now is t or later; a null t is no bound, always reached.
reached(_, null)

reached(now, t) if {
	t != null
	now >= t
}

# before(now, t): now is earlier than t; a null t is no bound, never reached.
before(_, null)

before(now, t) if {
	t != null
	now < t
}

# link_until: the relationship's end, status.expiresAt, unless the
# invitation the link accepted (spec.invitation, in the namespace) has
# autoExtend, which extends it at that moment without a gap. A link whose
# invitation is gone, or is another of the same name, ends at expiresAt.
link_until(link) := null if {
	inv := tenant.invitations[link.invitation]
	created_for(inv, link)
	inv.autoExtend
} else := link.expiresAt

# created_for: the link was created to accept this very invitation, not an
# earlier one of the same name (lifecycle.CreatedFor): by the invitation UID
# admission records on the link or, without it, by creation timestamps
# (whole seconds).
created_for(inv, link) if {
	link.invitationUID != null
	link.invitationUID == inv.uid
}

created_for(inv, link) if {
	link.invitationUID == null
	inv.created <= link.created
}

# --- Rooms

# target_room: the room a request acts on; undefined for a ticket or report
# nobody knows, which is then denied as one out of scope.
target_room := input.name if input.resource == "rooms"

target_room := tenant.tickets[input.name] if input.resource == "tickets"

target_room := tenant.reports[input.name] if input.resource == "roomreports"

room_verdict := "Allow" if {
	input.name != ""
	some g in grants
	covers(g, target_room)
} else := "Deny" if {
	input.name != ""
} else := "Allow" if {
	# Tickets and reports: -l partners.roompro.io/room in (v1, ...) with
	# every value covered.
	input.resource != "rooms"
	input.verb in {"list", "watch"}
	some req in input.labelSelector
	req.key == room_label
	req.operator in {"In", "Equals"}
	count(req.values) > 0
	every v in req.values {
		some g in grants
		covers(g, v)
	}
} else := "Allow" if {
	# A list or watch must confine itself to the partner's rooms, and the
	# caller's grants must cover the whole scope of every active link of
	# its domain in the namespace (the access label is the domain's).
	input.subresource == ""
	input.verb in {"list", "watch"}
	requires_access_label
	covered := {g.link | some g in grants; not scoped(g.scope)}
	count(covered) > 0
	count(covered) >= count(active_links_of_domain)
} else := "Deny"

# ring_verdict: every room whose spec.updateRing names the ring is covered
# by some grant (a ring without rooms changes no room).
ring_verdict := "Deny" if {
	input.name == ""
} else := "Deny" if {
	some room in tenant.ringRooms[input.name]
	not covered_by_some_grant(room)
} else := "Allow"

covered_by_some_grant(room) if {
	some g in grants
	covers(g, room)
}

active_links_of_domain contains name if {
	some name in tenant.linksOfDomain[domain]
	link := tenant.links[name]
	link.phase == "Active"
	not link.deleting
}

requires_access_label if {
	key := concat("", [access_label_prefix, domain])
	some req in input.labelSelector
	req.key == key
	access_requirement(req)
}

access_requirement(req) if req.operator == "Exists"

access_requirement(req) if {
	req.operator in {"In", "Equals"}
	req.values == ["true"]
}

# covers: the room exists, is in the link's scope (the union of its live
# assignments) and in the grant's scope, which only narrows it.
covers(g, name) if {
	room := tenant.rooms[name]
	in_link_scope(g.link, name, room)
	in_grant_scope(g.scope, name, room)
}

in_link_scope(link, name, room) if {
	some a_name in tenant.assignmentsOfLink[link]
	a := tenant.assignments[a_name]
	not a.deleting
	valid_scope(a.rooms)
	scope_matches(a.rooms, name, room)
}

# An empty role scope is the link's whole scope.
in_grant_scope(scope, _, _) if not scoped(scope)

in_grant_scope(scope, name, room) if scope_matches(scope, name, room)

scoped(scope) if count(scope.names) > 0

scoped(scope) if scope.selector != null

# --- RoomScope: names or a label selector (either matches)

scope_matches(scope, name, _) if scope.names[name]

scope_matches(scope, _, room) if {
	scope.selector != null
	selector_matches(scope.selector, room.labels)
}

selector_matches(selector, labels) if {
	every key, value in selector.matchLabels {
		labels[key] == value
	}
	every e in selector.matchExpressions {
		expression_matches(e, labels)
	}
}

expression_matches(e, labels) if {
	e.operator == "In"
	labels[e.key] in e.values
}

expression_matches(e, labels) if {
	e.operator == "NotIn"
	not labels[e.key] in e.values
}

expression_matches(e, labels) if {
	e.operator == "Exists"
	has_label(labels, e.key)
}

expression_matches(e, labels) if {
	e.operator == "DoesNotExist"
	not has_label(labels, e.key)
}

has_label(labels, key) if labels[key]

valid_scope(scope) if scope.selector == null

valid_scope(scope) if {
	scope.selector != null
	every e in scope.selector.matchExpressions {
		valid_expression(e)
	}
}

valid_expression(e) if {
	e.operator in {"In", "NotIn"}
	count(e.values) > 0
}

valid_expression(e) if {
	e.operator in {"Exists", "DoesNotExist"}
	count(e.values) == 0
}

# --- Partner roles: only those of the links the caller's grants are on

roles_verdict := "Allow" if {
	input.name == ""
	input.verb == "create" # admission checks the role's link
} else := "Allow" if {
	input.name == ""
	input.verb in {"list", "watch"}
	some req in input.fieldSelector
	req.key == "spec.partnerLink"
	req.operator in {"In", "Equals"}
	count(req.values) == 1
	holds_on(req.values[0])
} else := "Deny" if {
	input.name == ""
} else := "Allow" if {
	holds_on(tenant.roles[input.name].partnerLink)
} else := "Deny" if {
	tenant.roles[input.name]
} else := "Allow" if {
	# A name no role has yet: the caller must hold the permission on every
	# link that may own it.
	count(role_owners) > 0
	every owner in role_owners {
		holds_on(owner)
	}
} else := "Deny"

holds_on(link) if {
	some g in grants
	g.link == link
}

# role_owners: the link of a built-in role's name, or every link whose name
# and a dash the role's name starts with.
role_owners := {trim_suffix(input.name, "-primary-admins")} if {
	endswith(input.name, "-primary-admins")
} else := {name |
	some name, _ in tenant.links
	startswith(input.name, concat("", [name, "-"]))
}

# --- Change control: PartnerChangeRequests
#
# A partner proposes (create) where its domain has an active link; the
# admission webhook checks the change. It reads the requests of the active
# links of its domain on which it is a member of a role (whatever the
# role's permissions) or of which it is a tenant manager: one by name, a
# list only by the label partners.roompro.io/partner-link (In or =, every
# value such a link). It never decides (approve), changes, deletes or
# writes status: the customer decides.

change_request_request if {
	input.group == api_group
	input.resource == "partnerchangerequests"
}

change_request_verdict := "Deny" if {
	input.subresource != ""
} else := "Allow" if {
	input.verb == "create"
	some name in tenant.linksOfDomain[domain]
	active(tenant.links[name])
} else := "Deny" if {
	not input.verb in {"get", "list", "watch"}
} else := "Allow" if {
	input.name != ""
	reads_requests_of(tenant.changeRequests[input.name])
} else := "Deny" if {
	input.name != ""
} else := "Allow" if {
	input.verb in {"list", "watch"}
	some req in input.labelSelector
	req.key == partner_link_label
	req.operator in {"In", "Equals"}
	count(req.values) > 0
	every link in req.values {
		reads_requests_of(link)
	}
} else := "Deny"

active(link) if {
	link.phase == "Active"
	not link.deleting
}

# member_links: the active links of the caller's domain on which one of
# its subjects is a member of a role's assignment in force (an invalid
# scope grants nothing, not even this; nor does an assignment outside its
# window or of a relationship that has ended).
member_links contains link_name if {
	some link_name in tenant.linksOfDomain[domain]
	active(tenant.links[link_name])
	some role_name in tenant.rolesOfLink[link_name]
	role := tenant.roles[role_name]
	not role.deleting
	some a in role.assignments
	some s in subjects
	a.members[s]
	valid_scope(a.scope)
	in_force(tenant.links[link_name], a)
}

reads_requests_of(link) if link in member_links

reads_requests_of(link) if {
	l := tenant.links[link]
	active(l)
	l.partnerDomain == domain
	concat(":", [domain, tenant_manager_group]) in own_groups
}
