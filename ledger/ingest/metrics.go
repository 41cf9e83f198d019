package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	committed  prometheus.Counter
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	receipts   *prometheus.CounterVec
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
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.committed, m.duplicates, m.rejected, m.receipts}
}
