// Package crd_test proves, against a real kube-apiserver, that the CRDs reject
// every invalid object that can be judged without looking at other objects,
// name the field in the error, and store nothing.
package crd_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/internal/controlplane"
)

func TestCRDValidation(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CRD validation")
}

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	ctx       = context.Background()
)

const namespace = "tenant-a"

var _ = BeforeSuite(func() {
	var err error
	cp, err = controlplane.Start(controlplane.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cp.Config, client.Options{})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
})

var _ = AfterSuite(func() {
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
