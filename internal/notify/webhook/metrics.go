package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/camd/camd/internal/events"
)

var (
	hookLabels  = []string{"hook"}
	descPending = prometheus.NewDesc("camd_webhook_pending_events",
		"Events for the hook still to be delivered (its backlog in the event history).", hookLabels, nil)
	descDelivered = prometheus.NewDesc("camd_webhook_delivered_total",
		"Events the hook answered 2xx to since camd started.", hookLabels, nil)
	descFailures = prometheus.NewDesc("camd_webhook_failures_total",
		"Delivery attempts that failed (no answer in time, or not 2xx) since camd started.", hookLabels, nil)
	descDropped = prometheus.NewDesc("camd_webhook_dropped_events_total",
		"Events the bounded history dropped before the hook got them, since camd started.", hookLabels, nil)
	descFailing = prometheus.NewDesc("camd_webhook_failing",
		"1 while the hook's deliveries are failing.", hookLabels, nil)
)

// Collector returns the hooks' metrics for /metrics, labelled by the
// hook's Label.
func (n *Notifier) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Notifier }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descDelivered, descFailures, descDropped, descFailing} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.n.hooks {
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(h.delivered.Load()), h.label)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(h.failures.Load()), h.label)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(h.dropped.Load()), h.label)
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, b2f(h.failing.Load()), h.label)
		if !h.ready.Load() {
			continue
		}
		if p, err := c.n.Pending(h.URL); err == nil {
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p), h.label)
		}
	}
}

// Pending counts the events the hook with this URL has still to get.
func (n *Notifier) Pending(rawURL string) (int, error) {
	for _, h := range n.hooks {
		if h.URL != rawURL {
			continue
		}
		evs, err := n.cfg.Log.After(h.cur.Load(), events.Filter{}, maxPending)
		if err != nil {
			return 0, err
		}
		p := 0
		for _, e := range evs {
			if h.match(e) {
				p++
			}
		}
		return p, nil
	}
	return 0, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
