package mqtt

import "github.com/prometheus/client_golang/prometheus"

var (
	descConnected = prometheus.NewDesc("camd_mqtt_connected",
		"1 while camd is connected to the MQTT broker.", nil, nil)
	descPublished = prometheus.NewDesc("camd_mqtt_events_published_total",
		"Events the broker acknowledged since camd started.", nil, nil)
)

// Collector returns the publisher's metrics for /metrics.
func (p *Publisher) Collector() prometheus.Collector { return collector{p} }

type collector struct{ p *Publisher }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnected
	ch <- descPublished
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	conn, n := c.p.connected, c.p.published
	c.p.mu.Unlock()
	v := 0.0
	if conn {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(n))
}
