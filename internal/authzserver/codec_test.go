package authzserver

import (
	"bytes"
	jsonv1 "encoding/json"
	"encoding/json/jsontext"
	"errors"
	"reflect"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/roompro/partner-operator/internal/authz"
)

// The reference is the kube-apiserver's own decoder, sigs.k8s.io/json, in
// strict mode for duplicate fields: it matches member names exactly and
// keeps the last of a repeated one, but reports the repetition, which the
// apiserver rejects. Unknown fields are left out of its strict checks: the
// codec ignores them, as the apiserver does unless asked for
// fieldValidation=Strict.

// kubeDecode decodes body as the apiserver would, and validates it as the
// handler does.
func kubeDecode(body []byte) (*authorizationv1.SubjectAccessReview, error) {
	review := &authorizationv1.SubjectAccessReview{}
	strict, err := kjson.UnmarshalStrict(body, review, kjson.DisallowDuplicateFields)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	if err := validate(review); err != nil {
		return nil, err
	}
	return review, nil
}

// checkCodec is the property: the codec accepts a review only if the
// apiserver's decoder accepts it too, and then decodes the same review,
// and so the same request. It rejects more than that decoder only for what
// is not I-JSON (RFC 7493: invalid UTF-8, unpaired surrogates, a name given
// twice in any object), which that decoder takes and repairs or resolves by
// order.
func checkCodec(t *testing.T, body []byte) {
	t.Helper()
	decoded, gotErr := decodeReview(bytes.NewReader(body))
	var got *authorizationv1.SubjectAccessReview
	if gotErr == nil {
		// Compared as decoded, in the reader's reused fields.
		got = &decoded.review
		defer decoded.release()
	}
	want, wantErr := kubeDecode(body)
	switch {
	case gotErr == nil && wantErr != nil:
		t.Fatalf("body %q: the codec accepts what the apiserver's decoder rejects: %v", body, wantErr)
	case gotErr == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("body %q:\ncodec:     %+v\napiserver: %+v", body, got, want)
	case gotErr == nil && !reflect.DeepEqual(requestOf(&got.Spec), requestOf(&want.Spec)):
		t.Fatalf("body %q: the requests differ:\ncodec:     %+v\napiserver: %+v", body, requestOf(&got.Spec), requestOf(&want.Spec))
	case gotErr != nil && wantErr == nil && jsontext.Value(body).IsValid():
		t.Fatalf("body %q: the codec rejects an I-JSON review the apiserver's decoder accepts: %v", body, gotErr)
	}
}

// checkAnswer: the answer to a decision is a review that the apiserver's
// decoder reads with every strict check on, and reads as it reads
// encoding/json's encoding of a review with that status and nothing else.
func checkAnswer(t *testing.T, d authz.Decision) {
	t.Helper()
	answer := appendAnswer(nil, d)
	if !jsontext.Value(answer).IsValid() {
		t.Fatalf("decision %+v: the answer %q is not I-JSON", d, answer)
	}
	var got authorizationv1.SubjectAccessReview
	strict, err := kjson.UnmarshalStrict(answer, &got, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil || len(strict) > 0 {
		t.Fatalf("answer %s: the apiserver's decoder says %v %v", answer, err, strict)
	}
	status := authorizationv1.SubjectAccessReviewStatus{Allowed: d.Verdict == authz.Allow, Denied: d.Verdict == authz.Deny, Reason: d.Reason}
	encoded, err := jsonv1.Marshal(&authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion, Kind: reviewKind},
		Status:   status,
	})
	if err != nil {
		t.Fatal(err)
	}
	var want authorizationv1.SubjectAccessReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(encoded, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decision %+v:\nanswer:         %s\nencoding/json: %s", d, answer, encoded)
	}
	if strings.Contains(string(answer), `"denied":false`) {
		t.Fatalf("answer %s: denied is omitted when false, as encoding/json does", answer)
	}
}

const apiserverReview = `{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},` +
	`"spec":{"resourceAttributes":{"namespace":"t","verb":"get","group":"partners.roompro.io","version":"v1alpha1","resource":"rooms","name":"nyc"},` +
	`"user":"alice@contoso.com","groups":["contoso.com:admins","system:authenticated"],` +
	`"extra":{"authentication.kubernetes.io/credential-id":["JTI=0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"]},"uid":"8d5c4a1e-2b3f-4c6d-9e8f-7a6b5c4d3e2f"},"status":{"allowed":false}}`

const sar = `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",`

var codecSeeds = []string{
	apiserverReview,
	sar + `"spec":{"nonResourceAttributes":{"path":"/api","verb":"get"},"groups":["system:authenticated"]}}`,
	sar + `"spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","resource":"rooms","labelSelector":{"rawSelector":"x","requirements":[{"key":"k","operator":"In","values":["v","w"]},{"key":"e","operator":"Exists"}]}}}}`,
	sar + `"spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","labelSelector":{"rawSelector":"partners.roompro.io/access-contoso.com in (true)"}}}}`,
	sar + `"spec":{"user":"a@b.c","resourceAttributes":{"verb":"list","resource":"partnerroles","labelSelector":{"requirements":[{"key":"k","operator":"Exists"}]},"fieldSelector":{"rawSelector":"x","requirements":[{"key":"spec.partnerLink","operator":"In","values":["contoso"]}]}}}}`,
	sar + `"spec":{"user":"a","resourceAttributes":{"verb":"get","fieldSelector":{"rawSelector":"spec.partnerLink=contoso"},"future":[1,-2.5e+3,true,false,null,{"x":{}}]}},"future":5,"status":{"allowed":true,"reason":"x"}}`,
	// Metadata of every kind, as another caller may send it.
	sar + `"metadata":{"name":"n","namespace":"t","labels":{"a":"b"},"annotations":{"c":"d"},"generation":3,"creationTimestamp":"2026-01-02T03:04:05Z",` +
		`"deletionTimestamp":null,"deletionGracePeriodSeconds":30,"finalizers":["f"],"ownerReferences":[{"apiVersion":"v1","kind":"K","name":"o","uid":"u","controller":false}],` +
		`"managedFields":[{"manager":"m","operation":"Apply","time":"2026-01-02T03:04:05Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},` +
		`"spec":{"user":"a","nonResourceAttributes":{"path":"/"}}}`,
	sar + `"metadata":{"generation":-0},"spec":{"user":"a","nonResourceAttributes":{}}}`,
	sar + `"metadata":{"generation":1.0},"spec":{"user":"a","nonResourceAttributes":{}}}`,
	sar + `"metadata":{"generation":1e2},"spec":{"user":"a","nonResourceAttributes":{}}}`,
	sar + `"metadata":{"creationTimestamp":"bogus"},"spec":{"user":"a","nonResourceAttributes":{}}}`,
	sar + `"metadata":5,"spec":{"user":"a","nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a","extra":{"k":null,"l":[null,"v"]},"uid":null,"nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a","extra":{"k":["1"],"k":["2"]},"nonResourceAttributes":{}}}`,
	// Escapes, folding, repeated names, nulls.
	`{"APIVERSION":"authorization.k8s.io\/v1","\u006bind":"SubjectAccessReview","SPEC":{"ſpec":1,"uſer":"\ud83d\ude00\u00e9\"\\\/\b\f\n\r\t","groups":["a",null,"\u0000"]}}`,
	sar + `"spec":{"User":"a","Groups":["g"],"resourceAttributes":{"verb":"get"}}}`,
	sar + `"spec":{"user":"a","user":null,"nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a","\u0075ser":"b","nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a","resourceAttributes":{"verb":"get"},"resourceAttributes":{"name":"n"}}}`,
	sar + `"spec":{"user":"a","resourceAttributes":{"verb":"get","labelSelector":{"requirements":[{"key":"a","values":["1","2"]},null,{"key":"b","key":"c"}]}}}}`,
	sar + `"spec":{"user":"a","resourceAttributes":{"verb":"get"},"future":{"x":1,"x":2}}}`,
	sar + `"spec":{"user":"a","resourceAttributes":null,"nonResourceAttributes":{"path":"/"},"groups":[],"groups":null}}`,
	`{"kind":"SubjectAccessReview","apiVersion":"x","apiVersion":"authorization.k8s.io/v1","spec":{"user":"a","nonResourceAttributes":{}}}`,
	// Invalid UTF-8 and unpaired surrogates.
	sar + "\"spec\":{\"user\":\"a\xff\xfeb\",\"nonResourceAttributes\":{}}}",
	sar + `"spec":{"user":"a\ud800b","nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a\udc00\ud800","nonResourceAttributes":{}}}`,
	sar + "\"future\":\"\xed\xa0\x80\",\"spec\":{\"user\":\"a\",\"nonResourceAttributes\":{}}}",
	// Syntax and types.
	"\t{\"apiVersion\" : \"authorization.k8s.io/v1\" ,\r\n\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"a\",\"nonResourceAttributes\":{}}}\n ",
	sar + `"spec":{"user":5,"nonResourceAttributes":{}}}`,
	sar + `"spec":{"user":"a","nonResourceAttributes":{}}} x`,
	sar + `"spec":{"user":"a","nonResourceAttributes":{}}}{}`,
	sar + `"spec":{"user":"a","nonResourceAttributes":{},}}`,
	sar + `"spec":{"user":"a","nonResourceAttributes":{"path":01}}}`,
	sar + `"spec":{"user":"a","nonResourceAttributes":[]}}`,
	sar + `"spec":null}`,
	`null`, ``, `{`, `[]`, `"x"`, `{"a":[1,]}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
}

func TestCodecMatchesKubernetesDecoder(t *testing.T) {
	for _, body := range codecSeeds {
		checkCodec(t, []byte(body))
	}
	// The nesting limit (10,000 in both), in an unknown member and in a
	// known one.
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		checkCodec(t, []byte(sar+`"spec":{"user":"a","nonResourceAttributes":{}},"future":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`))
		checkCodec(t, []byte(sar+`"spec":{"user":"a","nonResourceAttributes":{},"future":`+strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth)+`}}`))
	}
}

// The rules of codec.go that the webhook's security rests on, one by one.
func TestDecodingIsStrict(t *testing.T) {
	rejected := map[string]string{
		"a repeated member":                 sar + `"spec":{"user":"admin","user":"alice@contoso.com","nonResourceAttributes":{}}}`,
		"a repeated member, escaped":        sar + `"spec":{"user":"admin","\u0075ser":"alice@contoso.com","nonResourceAttributes":{}}}`,
		"a repeated member in an unknown":   sar + `"spec":{"user":"a","nonResourceAttributes":{}},"future":{"x":1,"x":2}}`,
		"a repeated key of extra":           sar + `"spec":{"user":"a","extra":{"k":["1"],"k":["2"]},"nonResourceAttributes":{}}}`,
		"names match exactly":               sar + `"spec":{"User":"alice@contoso.com","nonResourceAttributes":{}}}`,
		"names match exactly, no folding":   sar + `"spec":{"uſer":"alice@contoso.com","nonResourceAttributes":{}}}`,
		"invalid UTF-8":                     sar + "\"spec\":{\"user\":\"alice@contoso.com\xff\",\"nonResourceAttributes\":{}}}",
		"an unpaired surrogate":             sar + `"spec":{"user":"alice\ud800@contoso.com","nonResourceAttributes":{}}}`,
		"data after the review":             sar + `"spec":{"user":"a","nonResourceAttributes":{}}}{}`,
		"nesting deeper than 10,000":        sar + `"spec":{"user":"a","nonResourceAttributes":{}},"future":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		"a wrong type in a field not read":  sar + `"metadata":{"labels":[]},"spec":{"user":"a","nonResourceAttributes":{}}}`,
		"a wrong type in a field not read2": sar + `"spec":{"user":"a","uid":1,"nonResourceAttributes":{}}}`,
	}
	for name, body := range rejected {
		if review, err := decodeReview(strings.NewReader(body)); err == nil {
			t.Errorf("%s: accepted as %+v", name, review.review.Spec)
			review.release()
		}
	}
	accepted := map[string]string{
		"the apiserver's review": apiserverReview,
		"unknown members":        `{"future":{"a":[1,{"b":null}]},` + sar[1:] + `"spec":{"future":"x","user":"a","resourceAttributes":{"future":true,"verb":"get","labelSelector":{"future":0,"requirements":[{"future":[],"key":"k","operator":"Exists"}]}}}}`,
		"nesting of 10,000":      sar + `"spec":{"user":"a","nonResourceAttributes":{}},"future":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	}
	for name, body := range accepted {
		review, err := decodeReview(strings.NewReader(body))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		review.release()
	}
}

func TestAnswerIsWhatTheApiserverReads(t *testing.T) {
	for _, reason := range []string{"", "not a partner identity", `q"b\s/<>&` + "\x00\x1f\b\f\n\r\t\x7f", "\u2028\u2029é😀", "bad\xff\xfe utf-8\xed\xa0\x80"} {
		for _, v := range []authz.Verdict{authz.Allow, authz.Deny, authz.NoOpinion} {
			checkAnswer(t, authz.Decision{Verdict: v, Reason: reason})
		}
	}
}

// FuzzCodecMatchesKubernetesDecoder: `make test` runs its seeds; `make fuzz`
// runs it for FUZZTIME (CI: 30 s).
func FuzzCodecMatchesKubernetesDecoder(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkCodec(t, body)
		checkAnswer(t, authz.Decision{Verdict: authz.Verdict(len(body) % 3), Reason: string(body)})
	})
}

// TestAReusedReaderKeepsNothingOfTheLastReview: a reader back from the pool
// decodes the next review as a fresh one would, with no group, extra value,
// selector or attribute of the one before.
func TestAReusedReaderKeepsNothingOfTheLastReview(t *testing.T) {
	full := []byte(sar + `"spec":{"user":"alice@contoso.com","groups":["contoso.com:helpdesk","system:authenticated"],` +
		`"extra":{"amr":["mfa","pwd"]},"uid":"u1","resourceAttributes":{"namespace":"fourth-coffee","verb":"list","group":"partners.roompro.io",` +
		`"resource":"rooms","labelSelector":{"requirements":[{"key":"access.partners.roompro.io/contoso.com","operator":"Exists"}]},` +
		`"fieldSelector":{"rawSelector":"metadata.name=a"}}}}`)
	minimal := []byte(sar + `"spec":{"user":"bob","nonResourceAttributes":{"path":"/api","verb":"get"}}}`)
	for range 100 { // the pool may hand out a new reader; try until it reuses one
		first, err := decodeReview(bytes.NewReader(full))
		if err != nil {
			t.Fatal(err)
		}
		first.release()
		second, err := decodeReview(bytes.NewReader(minimal))
		if err != nil {
			t.Fatal(err)
		}
		reused := second == first
		want, err := kubeDecode(minimal)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&second.review, want) {
			t.Fatalf("a reused reader decoded %+v, want %+v", second.review, want)
		}
		second.release()
		if reused {
			return
		}
	}
	t.Fatal("the pool never handed the same reader back: the test checked nothing")
}
