package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	committed  prometheus.Counter
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	receipts   *prometheus.CounterVec
	// rejectionsDropped counts, by party, rejections pushed out of the
	// rejections stream by the per-party cap (rejectdrops.go).
	rejectionsDropped *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ingest_committed_total",
			Help: "Messages committed to the log and acknowledged."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ingest_duplicates_total",
			Help: "Messages whose identical event was already logged (redeliveries, retries)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_ingest_rejected_total",
			Help: "Messages refused, by reason code."}, []string{"reason"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_receipt_requests_total",
			Help: "Receipt requests answered, by status."}, []string{"status"}),
		rejectionsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_ingest_rejections_dropped_total",
			Help: "Rejections of a party dropped from the rejections stream (its oldest) because the party's subject was at its cap."}, []string{"party"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.committed, m.duplicates, m.rejected, m.receipts, m.rejectionsDropped}
}
