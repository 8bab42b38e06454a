package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/roompro/partner-operator/api/v1alpha1"
)

func TestJudgeRelationship(t *testing.T) {
	established := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	status := func(expiresAt *time.Time, count int32) *v1alpha1.PartnerLinkStatus {
		s := &v1alpha1.PartnerLinkStatus{Phase: v1alpha1.LinkActive, EstablishedAt: &metav1.Time{Time: established}, ExtensionCount: count}
		if expiresAt != nil {
			s.ExpiresAt = &metav1.Time{Time: *expiresAt}
		}
		return s
	}
	days := func(n int32) *int32 { return &n }
	at := func(d time.Duration) time.Time { return established.Add(d) }
	ptr := func(t time.Time) *time.Time { return &t }

	cases := []struct {
		name      string
		status    *v1alpha1.PartnerLinkStatus
		terms     terms
		known     bool
		now       time.Time
		expiresAt *time.Time
		notice    string
		expired   bool
		extended  int
		next      time.Time
	}{
		{"no end", status(nil, 0), terms{}, true, at(day), nil, "", false, 0, time.Time{}},
		{"removing durationDays removes the end", status(ptr(at(10*day)), 0), terms{}, true, at(day), nil, "", false, 0, time.Time{}},
		{"more than 30 days left: no notice, wake at 30", status(nil, 0), terms{durationDays: days(100)}, true, at(day),
			ptr(at(100 * day)), "", false, 0, at(70 * day)},
		{"exactly 30 days left", status(nil, 0), terms{durationDays: days(100)}, true, at(70 * day),
			ptr(at(100 * day)), v1alpha1.ReasonExpiresIn30Days, false, 0, at(93 * day)},
		{"a second before 7 days left", status(nil, 0), terms{durationDays: days(100)}, true, at(93*day - time.Second),
			ptr(at(100 * day)), v1alpha1.ReasonExpiresIn30Days, false, 0, at(93 * day)},
		{"7 days left", status(nil, 0), terms{durationDays: days(100)}, true, at(93 * day),
			ptr(at(100 * day)), v1alpha1.ReasonExpiresIn7Days, false, 0, at(99 * day)},
		{"1 day left: wake at the end", status(nil, 0), terms{durationDays: days(1)}, true, at(0),
			ptr(at(day)), v1alpha1.ReasonExpiresIn1Day, false, 0, at(day)},
		{"a second before the end", status(nil, 0), terms{durationDays: days(1)}, true, at(day - time.Second),
			ptr(at(day)), v1alpha1.ReasonExpiresIn1Day, false, 0, at(day)},
		{"at the end", status(nil, 0), terms{durationDays: days(1)}, true, at(day), ptr(at(day)), "", true, 0, time.Time{}},
		{"shortened below the time elapsed", status(ptr(at(100*day)), 0), terms{durationDays: days(2)}, true, at(3 * day),
			ptr(at(2 * day)), "", true, 0, time.Time{}},
		{"autoExtend at the end", status(nil, 0), terms{durationDays: days(1), autoExtend: true}, true, at(day),
			ptr(at(day + extension)), "", false, 1, at(day + extension - 30*day)},
		{"autoExtend after a long outage extends until the end is ahead", status(nil, 0), terms{durationDays: days(1), autoExtend: true}, true,
			at(day + 2*extension), ptr(at(day + 3*extension)), "", false, 3, at(day + 3*extension - 30*day)},
		{"extensions count beyond the listed 16", status(nil, 20), terms{durationDays: days(1)}, true, at(day),
			ptr(at(day + 20*extension)), "", false, 0, at(day + 20*extension - 30*day)},
		{"an invitation gone keeps the end and does not extend", status(ptr(at(day)), 0), terms{}, false, at(day),
			ptr(at(day)), "", true, 0, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rel := judgeRelationship(tc.status, tc.terms, tc.known, tc.now)
			switch {
			case tc.expiresAt == nil && rel.expiresAt != nil:
				t.Errorf("expiresAt = %v, want none", rel.expiresAt)
			case tc.expiresAt != nil && (rel.expiresAt == nil || !rel.expiresAt.Time.Equal(*tc.expiresAt)):
				t.Errorf("expiresAt = %v, want %v", rel.expiresAt, *tc.expiresAt)
			}
			if rel.notice != tc.notice || rel.expired != tc.expired || len(rel.extended) != tc.extended || !rel.next.Equal(tc.next) {
				t.Errorf("notice %q expired %v extended %d next %v, want %q %v %d %v", rel.notice, rel.expired, len(rel.extended), rel.next,
					tc.notice, tc.expired, tc.extended, tc.next)
			}
			if int(rel.extensionCount) != int(tc.status.ExtensionCount)+tc.extended {
				t.Errorf("extensionCount = %d", rel.extensionCount)
			}
		})
	}

	t.Run("the list keeps the last 16 extensions", func(t *testing.T) {
		s := status(nil, 0)
		for i := range maxExtensionsListed {
			s.Extensions = append(s.Extensions, v1alpha1.LinkExtension{From: metav1.Time{Time: at(time.Duration(i) * day)}})
		}
		rel := judgeRelationship(s, terms{durationDays: days(1), autoExtend: true}, true, at(day))
		if len(rel.extensions) != maxExtensionsListed || !rel.extensions[0].From.Time.Equal(at(day)) ||
			!rel.extensions[maxExtensionsListed-1].From.Time.Equal(at(day)) || !rel.extensions[maxExtensionsListed-1].To.Time.Equal(at(day+extension)) {
			t.Errorf("extensions = %+v", rel.extensions)
		}
	})
}

func TestNoticeRaised(t *testing.T) {
	for _, tc := range []struct {
		previous, current string
		want              bool
	}{
		{"", v1alpha1.ReasonExpiresIn30Days, true},
		{v1alpha1.ReasonExpiresIn30Days, v1alpha1.ReasonExpiresIn30Days, false},
		{v1alpha1.ReasonExpiresIn30Days, v1alpha1.ReasonExpiresIn7Days, true},
		{v1alpha1.ReasonExpiresIn7Days, "", false},
	} {
		if got := noticeRaised(tc.previous, tc.current); got != tc.want {
			t.Errorf("noticeRaised(%q, %q) = %v", tc.previous, tc.current, got)
		}
	}
}
