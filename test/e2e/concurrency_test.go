package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

const racers = 50

var _ = Describe("under concurrency", Ordered, func() {
	const ns = "races"
	BeforeAll(func() {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		for _, r := range []*v1alpha1.Room{room(ns, "r1", "us"), room(ns, "r2", "us"), room(ns, "never", "de")} {
			Expect(admin.Create(ctx, r)).To(Succeed())
		}
		inv := invitation(ns, "contoso", domain, 30)
		inv.Spec.Rooms = v1alpha1.RoomScope{Names: []string{"r1"}}
		Expect(admin.Create(ctx, inv)).To(Succeed())
		awaitInvitation(tm, tenantManagers, ns, "contoso")
	})

	It("lets exactly one of 50 simultaneous acceptances win", func() {
		var wins atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				l := link(ns, "contoso")
				l.Spec.PrimaryAdmins = nil
				for j := range racers { // every racer names all 50 admins; each names itself first
					l.Spec.PrimaryAdmins = append(l.Spec.PrimaryAdmins, v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: fmt.Sprintf("admin%d@contoso.com", (i+j)%racers)})
				}
				if err := as(fmt.Sprintf("tm%d@contoso.com", i), tenantManagers).Create(ctx, l); err != nil {
					errs <- err
					return
				}
				wins.Add(1)
			}()
		}
		wg.Wait()
		close(errs)
		Expect(wins.Load()).To(BeEquivalentTo(1))
		for err := range errs {
			// Depending on how far the winner got: the name is taken, the
			// invitation is marked accepted, or no pending invitation is left.
			Expect(apierrors.IsAlreadyExists(err) || strings.Contains(err.Error(), "already accepted") ||
				strings.Contains(err.Error(), "no pending invitation for contoso.com")).To(BeTrue(), "a loser must be told why: %v", err)
		}
		links := &v1alpha1.PartnerLinkList{}
		Expect(admin.List(ctx, links, client.InNamespace(ns))).To(Succeed())
		Expect(links.Items).To(HaveLen(1))
		Eventually(func() v1alpha1.LinkPhase {
			Expect(admin.Get(ctx, key(ns, "contoso"), &links.Items[0])).To(Succeed())
			return links.Items[0].Status.Phase
		}).Should(Equal(v1alpha1.LinkActive))
	})

	It("keeps at least one primary admin when all 50 remove themselves at once", func() {
		roleKey := key(ns, "contoso-primary-admins")
		Eventually(func() error { return admin.Get(ctx, roleKey, &v1alpha1.PartnerRole{}) }).Should(Succeed())
		var removed atomic.Int32
		var wg sync.WaitGroup
		refusals := make(chan string, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				me := fmt.Sprintf("admin%d@contoso.com", i)
				c := as(me)
				for { // read, remove myself, write; retry on a conflict
					role := &v1alpha1.PartnerRole{}
					Expect(c.Get(ctx, roleKey, role)).To(Succeed())
					members := role.Spec.Assignments[0].Members
					role.Spec.Assignments[0].Members = nil
					for _, m := range members {
						if m.Name != me {
							role.Spec.Assignments[0].Members = append(role.Spec.Assignments[0].Members, m)
						}
					}
					err := c.Update(ctx, role)
					switch {
					case err == nil:
						removed.Add(1)
						return
					case apierrors.IsConflict(err):
						continue
					default:
						refusals <- err.Error()
						return
					}
				}
			}()
		}
		wg.Wait()
		close(refusals)
		role := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, roleKey, role)).To(Succeed())
		Expect(role.Spec.Assignments[0].Members).To(HaveLen(1), "exactly one primary admin remains")
		Expect(removed.Load()).To(BeEquivalentTo(racers - 1))
		Expect(refusals).To(HaveLen(1))
		for msg := range refusals {
			Expect(msg).To(ContainSubstring("primary admin"))
		}
	})

	It("never allows a room outside every scope while roles and assignments change under load", func() {
		survivor := &v1alpha1.PartnerRole{}
		Expect(admin.Get(ctx, key(ns, "contoso-primary-admins"), survivor)).To(Succeed())
		admin0 := survivor.Spec.Assignments[0].Members[0].Name

		stop := make(chan struct{})
		var writers sync.WaitGroup
		writers.Add(2)
		go func() { // the customer flips the assignment between r1 and r2
			defer GinkgoRecover()
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := &v1alpha1.RoomAssignment{}
				Expect(admin.Get(ctx, key(ns, "contoso-invitation"), a)).To(Succeed())
				a.Spec.Rooms.Names = []string{[]string{"r1", "r2"}[i%2]}
				if err := admin.Update(ctx, a); err != nil && !apierrors.IsConflict(err) {
					Fail(err.Error())
				}
			}
		}()
		go func() { // the primary admin creates and deletes a narrowed role
			defer GinkgoRecover()
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := &v1alpha1.PartnerRole{
					ObjectMeta: metav1.ObjectMeta{Name: "contoso-churn", Namespace: ns},
					Spec: v1alpha1.PartnerRoleSpec{PartnerLink: "contoso", Permissions: []v1alpha1.Permission{v1alpha1.RoomsView},
						Assignments: []v1alpha1.RoleAssignment{{Name: "a", Members: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "carol@contoso.com"}},
							Scope: v1alpha1.RoomScope{Names: []string{"r2"}}}}},
				}
				if i%2 == 0 {
					_ = as(admin0).Create(ctx, r)
				} else {
					_ = as(admin0).Delete(ctx, r)
				}
			}
		}()

		var decisions, allowed atomic.Int32
		var readers sync.WaitGroup
		for i := range racers {
			readers.Add(1)
			go func() {
				defer GinkgoRecover()
				defer readers.Done()
				user := []string{admin0, "carol@contoso.com"}[i%2]
				deadline := time.Now().Add(3 * time.Second)
				for time.Now().Before(deadline) {
					for _, name := range []string{"r1", "r2", "never"} {
						sar := review(&authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: v1alpha1.GroupVersion.Group, Resource: "rooms", Name: name}, user)
						decisions.Add(1)
						if sar.Status.Allowed {
							allowed.Add(1)
							Expect(name).NotTo(Equal("never"), "a room in no scope was allowed")
						}
					}
				}
			}()
		}
		readers.Wait()
		close(stop)
		writers.Wait()
		Expect(decisions.Load()).To(BeNumerically(">", 300))
		Expect(allowed.Load()).To(BeNumerically(">", 0), "the scope must have allowed something, or the test proves nothing")
		GinkgoWriter.Printf("%d decisions, %d allowed, none outside every scope\n", decisions.Load(), allowed.Load())
	})
})
