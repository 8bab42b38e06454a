// Package metrics defines the Prometheus metrics a platform team alerts on,
// registered with controller-runtime's registry so that they are served on
// the manager's (secured) metrics endpoint.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// categoryLabel is the label of the change request metrics that names the
// approval category (rooms, roles, tickets).
const categoryLabel = "category"

var (
	// Decisions counts authorization decisions by verdict (Allow, Deny, NoOpinion).
	Decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "partner_operator_authorization_decisions_total",
		Help: "SubjectAccessReviews answered, by verdict.",
	}, []string{"verdict"})

	// Denials counts the denials of partner users by cause (the String of
	// an authz.DenialCause, a small fixed set). A partner reaching for
	// rooms outside its scope shows here, as cause="room_out_of_scope":
	// the log has no line per request (decisions are logged at V(1) only).
	Denials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "partner_operator_authorization_denials_total",
		Help: "SubjectAccessReviews of partner users denied, by cause.",
	}, []string{"cause"})

	// DecisionSeconds is the time from reading a review to writing the answer.
	DecisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "partner_operator_authorization_decision_duration_seconds",
		Help:    "Time to answer one SubjectAccessReview, decoding and encoding included.",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
	})

	// IndexSynced is 1 once the authorization index holds every object; 0
	// means partner users are denied.
	IndexSynced = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "partner_operator_authorization_index_synced",
		Help: "1 when the authorization index has synced; until then partner requests are denied.",
	})

	// IndexStalenessSeconds is how far behind the cluster the index may be
	// (internal/freshness): above the maximum, partner users are denied.
	IndexStalenessSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "partner_operator_authorization_index_staleness_seconds",
		Help: "Seconds since this replica wrote the latest heartbeat it has seen come back through its watch of the apiserver (since it started, before the first). Above the maximum staleness (5 s by default) partner requests are denied.",
	})

	// IndexStaleTotal counts the times the index turned stale.
	IndexStaleTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "partner_operator_authorization_index_stale_total",
		Help: "Times the authorization index turned stale after having been current; partner requests are denied until its watch catches up.",
	})

	// ChangeRequestDecisionSeconds is the time from a PartnerChangeRequest's
	// creation to the customer's decision, observed once per decided request.
	ChangeRequestDecisionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "partner_operator_change_request_decision_seconds",
		Help:    "Time from a PartnerChangeRequest's creation to the customer's decision (Approved or Denied), by category.",
		Buckets: []float64{60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600},
	}, []string{categoryLabel})

	// ChangeRequestApplySeconds is the time from the approval of a
	// PartnerChangeRequest to the operator's write of the change.
	ChangeRequestApplySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "partner_operator_change_request_apply_seconds",
		Help:    "Time from a PartnerChangeRequest's approval to the operator's write of the change, by category.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{categoryLabel})

	// HeartbeatWriteErrors counts the heartbeat writes that failed.
	HeartbeatWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "partner_operator_heartbeat_write_errors_total",
		Help: "Writes of this replica's heartbeat Lease that failed (the index turns stale when none succeeds for the maximum staleness).",
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Decisions, Denials, DecisionSeconds, IndexSynced, IndexStalenessSeconds, IndexStaleTotal, HeartbeatWriteErrors,
		ChangeRequestDecisionSeconds, ChangeRequestApplySeconds)
}

// StateCollector reports the state of the partner objects at each scrape,
// read from the manager's cache: invitations and links by phase, rooms in
// scope per partner, pending change requests per category, and the seconds
// left of each active time-bound link.
type StateCollector struct {
	Reader client.Reader
	// Clock is the time the seconds left of a link are counted from, the
	// controllers' clock. Default: the real clock.
	Clock clock.PassiveClock
}

// namespaceLabel is the label of every partner state metric that names the
// tenant namespace.
const namespaceLabel = "namespace"

var (
	invitationsDesc = prometheus.NewDesc("partner_operator_invitations",
		"PartnerInvitations by namespace and phase.", []string{namespaceLabel, "phase"}, nil)
	linksDesc = prometheus.NewDesc("partner_operator_links",
		"PartnerLinks by namespace and phase.", []string{namespaceLabel, "phase"}, nil)
	roomsDesc = prometheus.NewDesc("partner_operator_rooms_in_scope",
		"Rooms a partner may reach, by namespace and partner domain.", []string{namespaceLabel, "partner"}, nil)
	// linkExpiryDesc has a series per active link with a status.expiresAt
	// only: computed at each scrape, it has none for a link without an end,
	// an expired link, or one that is gone.
	linkExpiryDesc = prometheus.NewDesc("partner_operator_link_expiry_seconds",
		"Seconds until an active PartnerLink's relationship ends (status.expiresAt), by namespace and link.", []string{namespaceLabel, "link"}, nil)
	pendingChangesDesc = prometheus.NewDesc("partner_operator_change_requests_pending",
		"PartnerChangeRequests waiting for the customer's decision, by namespace and category.", []string{namespaceLabel, categoryLabel}, nil)
)

// Register adds the collector to controller-runtime's registry.
func (c *StateCollector) Register() error { return ctrlmetrics.Registry.Register(c) }

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- invitationsDesc
	ch <- linksDesc
	ch <- roomsDesc
	ch <- pendingChangesDesc
	ch <- linkExpiryDesc
}

// Collect implements prometheus.Collector. A list that fails (the cache is
// not started yet) contributes nothing to this scrape.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	type key struct{ namespace, label string }
	emit := func(desc *prometheus.Desc, counts map[key]int) {
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), k.namespace, k.label)
		}
	}

	invitations := &v1alpha1.PartnerInvitationList{}
	if c.Reader.List(ctx, invitations) == nil {
		counts := map[key]int{}
		for _, i := range invitations.Items {
			counts[key{i.Namespace, orUnknown(string(i.Status.Phase))}]++
		}
		emit(invitationsDesc, counts)
	}
	links := &v1alpha1.PartnerLinkList{}
	if c.Reader.List(ctx, links) == nil {
		counts := map[key]int{}
		for _, l := range links.Items {
			counts[key{l.Namespace, orUnknown(string(l.Status.Phase))}]++
		}
		emit(linksDesc, counts)
		now := c.now()
		for _, l := range links.Items {
			if l.Status.Phase == v1alpha1.LinkActive && l.Status.ExpiresAt != nil && l.DeletionTimestamp.IsZero() {
				ch <- prometheus.MustNewConstMetric(linkExpiryDesc, prometheus.GaugeValue, l.Status.ExpiresAt.Sub(now).Seconds(), l.Namespace, l.Name)
			}
		}
	}
	rooms := &v1alpha1.RoomList{}
	if c.Reader.List(ctx, rooms) == nil {
		counts := map[key]int{}
		for _, r := range rooms.Items {
			for _, partner := range r.Status.Partners {
				counts[key{r.Namespace, partner}]++
			}
		}
		emit(roomsDesc, counts)
	}
	requests := &v1alpha1.PartnerChangeRequestList{}
	if c.Reader.List(ctx, requests) == nil {
		counts := map[key]int{}
		for _, r := range requests.Items {
			// A request the controller has not seen yet waits as well.
			if r.Status.Phase == v1alpha1.ChangePending || r.Status.Phase == "" {
				counts[key{r.Namespace, string(r.Spec.Category)}]++
			}
		}
		emit(pendingChangesDesc, counts)
	}
}

func (c *StateCollector) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

func orUnknown(phase string) string {
	if phase == "" {
		return "Unknown"
	}
	return phase
}
