package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/controlplane"
)

// invalidManifest is one file of test/testdata/invalid: a manifest, the user
// who applies it ("# as: user,group,..."; the admin when absent) and the
// error text it must get ("# expect: ...").
type invalidManifest struct {
	file, expect string
	as           []string
	obj          *unstructured.Unstructured
}

func invalidManifests() []invalidManifest {
	root, err := controlplane.RepositoryRoot()
	if err != nil {
		panic(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "test", "testdata", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		panic("no test/testdata/invalid/*.yaml")
	}
	var out []invalidManifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			panic(err)
		}
		m := invalidManifest{file: filepath.Base(f), obj: &unstructured.Unstructured{}}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "# expect: "); ok {
				m.expect = v
			}
			if v, ok := strings.CutPrefix(line, "# as: "); ok {
				m.as = strings.Split(v, ",")
			}
		}
		if m.expect == "" {
			panic(f + " has no '# expect:' line")
		}
		if err := yaml.Unmarshal(bytes.TrimSpace(data), &m.obj.Object); err != nil {
			panic(f + ": " + err.Error())
		}
		out = append(out, m)
	}
	return out
}

var _ = Describe("the bad input catalogue", Ordered, ContinueOnFailure, func() {
	const ns = "bad-input"
	BeforeAll(func() {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(admin.Create(ctx, room(ns, "nyc", "us"))).To(Succeed())
		for _, inv := range []*v1alpha1.PartnerInvitation{
			invitation(ns, "contoso", domain, 30), invitation(ns, "pending", domain, 30), invitation(ns, "fabrikam", "fabrikam.com", 30),
		} {
			Expect(admin.Create(ctx, inv)).To(Succeed())
		}
		accept(ns, "contoso")
		Eventually(func() error { return as(alice).Get(ctx, key(ns, "nyc"), &v1alpha1.Room{}) }).Should(Succeed())
	})

	manifests := invalidManifests()
	It("holds at least 40 manifests", func() { Expect(len(manifests)).To(BeNumerically(">=", 40)) })
	for _, m := range manifests {
		It("rejects "+m.file, func() {
			c := admin
			if len(m.as) > 0 {
				c = as(m.as[0], m.as[1:]...)
			}
			err := c.Create(ctx, m.obj.DeepCopy())
			Expect(err).To(HaveOccurred(), "the manifest was accepted")
			Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "want Invalid or Forbidden, got %v", err)
			Expect(err.Error()).To(ContainSubstring(m.expect))
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(m.obj.GroupVersionKind())
			Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(m.obj), stored))).To(BeTrue(), "nothing may be stored")
		})
	}
})
