// Package matrix reads the permission matrix of docs/permissions.md: which
// permissions each column (customer role or the partner's primary admin)
// holds, and which requests each permission allows. Tests compare the
// shipped ClusterRoles and the authorization webhook's request mapping with
// it, so the document, the roles and the webhook cannot drift apart.
package matrix

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

// Grant is a resource of group partners.roompro.io (resource or
// resource/subresource, as in RBAC rules) and verbs on it.
type Grant struct {
	Resource string
	Verbs    []string
}

// Matrix is what docs/permissions.md says.
type Matrix struct {
	// Columns maps a column heading ("pro manager", "primary admin", ...)
	// to the permissions it holds, in the order of the table.
	Columns map[string][]v1alpha1.Permission
	// Allows maps a permission to the requests it allows.
	Allows map[v1alpha1.Permission][]Grant
	// Relationship is what the pro manager holds besides its column.
	Relationship []Grant
}

// The headings that identify the document's three tables.
var (
	matrixHeading       = []string{"feature", "permission"}
	allowsHeading       = []string{"permission", "resource", "verbs"}
	relationshipHeading = []string{"resource", "verbs"}
)

// ParseFile reads and parses the document at path (docs/permissions.md).
func ParseFile(path string) (*Matrix, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the permission matrix: %w", err)
	}
	m, err := Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse reads the tables of docs/permissions.md. Every table must be
// there, and every permission named must be one of the API's.
func Parse(doc []byte) (*Matrix, error) {
	m := &Matrix{Columns: map[string][]v1alpha1.Permission{}, Allows: map[v1alpha1.Permission][]Grant{}}
	var seen [3]bool
	for _, table := range tables(doc) {
		head, rows := table[0], table[1:]
		for _, row := range rows {
			if len(row) != len(head) {
				return nil, fmt.Errorf("row %q of the table headed %q has %d cells, want %d", row, head, len(row), len(head))
			}
		}
		var err error
		switch {
		case len(head) > 2 && slices.Equal(head[:2], matrixHeading):
			seen[0] = true
			err = m.readMatrix(head[2:], rows)
		case slices.Equal(head, allowsHeading):
			seen[1] = true
			err = m.readAllows(rows)
		case slices.Equal(head, relationshipHeading):
			seen[2] = true
			for _, row := range rows {
				m.Relationship = append(m.Relationship, Grant{Resource: row[0], Verbs: verbs(row[1])})
			}
		}
		if err != nil {
			return nil, err
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("no table headed %q", [][]string{matrixHeading, allowsHeading, relationshipHeading}[i])
		}
	}
	return m, nil
}

func (m *Matrix) readMatrix(columns []string, rows [][]string) error {
	for _, row := range rows {
		for action := range strings.SplitSeq(row[1], "/") {
			p, err := permission(row[0] + "." + strings.TrimSpace(action))
			if err != nil {
				return err
			}
			for i, column := range columns {
				switch row[2+i] {
				case "✔":
					m.Columns[column] = append(m.Columns[column], p)
				case "":
				default:
					return fmt.Errorf("matrix row %q, column %q: %q is neither ✔ nor empty", row, column, row[2+i])
				}
			}
		}
	}
	return nil
}

func (m *Matrix) readAllows(rows [][]string) error {
	for _, row := range rows {
		p, err := permission(row[0])
		if err != nil {
			return err
		}
		m.Allows[p] = append(m.Allows[p], Grant{Resource: row[1], Verbs: verbs(row[2])})
	}
	return nil
}

func permission(name string) (v1alpha1.Permission, error) {
	p := v1alpha1.Permission(name)
	if !slices.Contains(v1alpha1.AllPermissions, p) {
		return "", fmt.Errorf("%q is not a permission of the API (api/v1alpha1/permissions.go)", name)
	}
	return p, nil
}

func verbs(cell string) []string {
	out := strings.Split(cell, ",")
	for i, v := range out {
		out[i] = strings.TrimSpace(v)
	}
	return out
}

// tables returns the document's Markdown tables, each as its heading row
// then its body rows (the delimiter row dropped), cells trimmed and without
// backquotes.
func tables(doc []byte) [][][]string {
	var out [][][]string
	var current [][]string
	flush := func() {
		if len(current) > 0 {
			out = append(out, current)
		}
		current = nil
	}
	scanner := bufio.NewScanner(bytes.NewReader(doc))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if !strings.HasPrefix(line, "|") {
			flush()
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"), "|")
		for i, c := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(c, "`", ""))
		}
		if len(current) == 1 && strings.HasPrefix(cells[0], "---") {
			continue
		}
		current = append(current, cells)
	}
	flush()
	return out
}
