package admission

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// liveReads counts the reads that would go to the apiserver.
type liveReads struct {
	client.Reader
	n int
}

func (r *liveReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.n++
	return r.Reader.Get(ctx, key, obj, opts...)
}

func (r *liveReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r.n++
	return r.Reader.List(ctx, list, opts...)
}

// An Auto write never touches the change-request path's API: the mode comes
// from the manager's cache (modes), and the live reader is not called.
func TestAnAutoWriteReadsNothingLive(t *testing.T) {
	cache := cluster(nil, link("contoso"), modes(v1alpha1.ApprovalAuto, v1alpha1.ApprovalAuto))
	live := &liveReads{Reader: cache}
	v := &roomValidator{changes{reader: live, modes: cache, writer: cache, opts: ccOpts}}
	old := nycRoom()
	renamed := old.DeepCopy()
	renamed.Spec.DisplayName = "New York"
	if _, err := v.ValidateUpdate(asReq(alice, admissionv1.Update, false), old, renamed); err != nil {
		t.Fatalf("an Auto write: %v", err)
	}
	if live.n != 0 {
		t.Fatalf("an Auto write made %d live reads, want 0", live.n)
	}
	if got := requests(t, cache); len(got) != 0 {
		t.Fatalf("an Auto write made requests: %+v", got)
	}
}

// informerCache reads as controller-runtime's informer cache does: a
// lookup and a deep copy of the stored object, no encoding (the fake
// client's JSON round trips would measure themselves).
type informerCache struct {
	client.Reader
	links       []v1alpha1.PartnerLink
	invitations map[string]*v1alpha1.PartnerInvitation
}

func (c *informerCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	inv, ok := obj.(*v1alpha1.PartnerInvitation)
	if !ok {
		panic("informerCache serves invitations and links only")
	}
	c.invitations[key.Name].DeepCopyInto(inv)
	return nil
}

func (c *informerCache) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	links := list.(*v1alpha1.PartnerLinkList)
	links.Items = make([]v1alpha1.PartnerLink, len(c.links))
	for i := range c.links {
		c.links[i].DeepCopyInto(&links.Items[i])
	}
	return nil
}

// BenchmarkRoomUpdate is the room validator's cost for one update: a
// partner's in an Auto category (the mode read from the cache), against the
// customer's, which never asks for the mode. BENCHMARKS.md has the command.
func BenchmarkRoomUpdate(b *testing.B) {
	inv := modes(v1alpha1.ApprovalAuto, v1alpha1.ApprovalAuto)
	cache := &informerCache{links: []v1alpha1.PartnerLink{*link("contoso")}, invitations: map[string]*v1alpha1.PartnerInvitation{inv.Name: inv}}
	v := &roomValidator{changes{reader: cache, modes: cache, writer: nil, opts: ccOpts}}
	old := nycRoom()
	renamed := old.DeepCopy()
	renamed.Spec.DisplayName = "New York"
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"customer", asReq(customer, admissionv1.Update, false)},
		{"partner-auto", asReq(alice, admissionv1.Update, false)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.ValidateUpdate(c.ctx, old, renamed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
