package changecontrol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// hashChars is how many hex characters of the digest a name carries.
const hashChars = 10

// maxName is the longest object name (a DNS subdomain).
const maxName = 253

// Name returns the name of the PartnerChangeRequest that holds a write:
// <link>-<category>-<10 hex characters of a SHA-256 over the requester's
// name, the operation, the target, the base resourceVersion and the
// canonical JSON of the object> (object nil for a Delete). The same write
// of the same user gets the same name, so a retry, or many identical writes
// at once, make one request. The link part is shortened to keep the name
// within 253 characters and a valid DNS subdomain.
func Name(link string, category v1alpha1.ChangeCategory, requester string, op v1alpha1.ChangeOperation,
	target v1alpha1.ChangeTarget, baseResourceVersion string, object []byte) (string, error) {
	canonical, err := Canonical(object)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	// Each part is length-prefixed: no two different writes give the same
	// input to the hash.
	for _, part := range []string{requester, string(op), target.APIVersion, target.Kind, target.Name, baseResourceVersion, string(canonical)} {
		_, _ = fmt.Fprintf(h, "%d:%s\n", len(part), part) // a hash.Hash never fails a write
	}
	sum := hex.EncodeToString(h.Sum(nil))[:hashChars]
	suffix := "-" + string(category) + "-" + sum
	prefix := link
	if len(prefix)+len(suffix) > maxName {
		prefix = prefix[:maxName-len(suffix)]
	}
	// A cut may leave a label's end dangling: a name's labels end in an
	// alphanumeric character.
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		return strings.TrimPrefix(suffix, "-"), nil
	}
	return prefix + suffix, nil
}

// Canonical is the JSON of an object with its keys sorted and no
// insignificant space, so that two encodings of the same object compare
// equal; nil or empty stays nil.
func Canonical(object []byte) ([]byte, error) {
	if len(bytes.TrimSpace(object)) == 0 {
		return nil, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber() // keeps numbers as written: no float rounding
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the held object is not JSON: %w", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the held object: %w", err)
	}
	return out, nil
}
