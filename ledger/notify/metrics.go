package notify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queued       *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	pending      prometheus.Gauge
	dead         prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_notify_queued_total",
			Help: "Notifications written to the outbox, by CloudEvent type."}, []string{"type"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_notify_attempts_total",
			Help: "Delivery attempts, by type and outcome (delivered, http_error, redirect_refused, refused_address, transport_error, bad_target, no_target, sign_failed)."},
			[]string{"type", "outcome"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_notify_dead_lettered_total",
			Help: "Notifications moved to the dead-letter list after their last attempt, by type."}, []string{"type"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_notify_outbox_events",
			Help: "Notifications waiting in the outbox."}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_notify_dead_letter_events",
			Help: "Notifications in the dead-letter list (DIR/notify/dead); an operator reads and clears it."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.queued, m.attempts, m.deadLettered, m.pending, m.dead}
}
