package ledger

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ledger's Prometheus collectors. Labels are low
// cardinality: never ids, parties' subjects or pseudonyms.
type metrics struct {
	entries         prometheus.Counter
	duplicates      prometheus.Counter
	conflicts       prometheus.Counter
	clockBackwards  prometheus.Counter
	batchSize       prometheus.Histogram
	commitSeconds   prometheus.Histogram
	sequenceSeconds prometheus.Histogram
	treeSize        prometheus.Gauge
	checkpointTime  prometheus.Gauge
	witnessedSize   prometheus.Gauge
	witnessedTime   prometheus.Gauge

	retentionTombstones    prometheus.Counter
	retentionKeysDestroyed prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		entries: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ledger_entries_total",
			Help: "Disclosure entries appended to the log."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ledger_duplicates_total",
			Help: "Submissions whose identical bytes were already logged."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ledger_id_conflicts_total",
			Help: "Submissions refused because their id was logged with other bytes."}),
		clockBackwards: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_ledger_clock_backwards_total",
			Help: "Batches for which the clock was behind the last integration time."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spoor_ledger_batch_entries",
			Help: "Entries appended per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spoor_ledger_commit_seconds",
			Help: "Time of the durable store commit (fsync) per batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		sequenceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spoor_ledger_sequence_seconds",
			Help: "Time to sequence, sign and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_ledger_tree_size",
			Help: "Size of the tree in the newest checkpoint."}),
		checkpointTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_ledger_checkpoint_timestamp_seconds",
			Help: "When the newest checkpoint was committed (Unix seconds); age = time() - this."}),
		witnessedSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_ledger_witnessed_tree_size",
			Help: "Size of the tree in the newest checkpoint whose witness cosignatures met the policy."}),
		witnessedTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_ledger_witnessed_timestamp_seconds",
			Help: "When the newest witnessed checkpoint was stored (Unix seconds)."}),
		retentionTombstones: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_retention_tombstones_total",
			Help: "Disclosures erased by the retention job."}),
		retentionKeysDestroyed: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_retention_data_keys_destroyed_total",
			Help: "Data keys destroyed because every envelope under them was erased."}),
	}
}

func (m *metrics) observeWitnessed(h *Head) {
	m.witnessedSize.Set(float64(h.Size))
	m.witnessedTime.SetToCurrentTime()
}

func (m *metrics) observeHead(h *Head, now func() time.Time) {
	if h == nil {
		return
	}
	m.treeSize.Set(float64(h.Size))
	m.checkpointTime.Set(float64(now().UnixNano()) / 1e9)
}

// Metrics returns the ledger's collectors for main to register.
func (l *Ledger) Metrics() []prometheus.Collector {
	m := l.metrics
	return []prometheus.Collector{m.entries, m.duplicates, m.conflicts, m.clockBackwards, m.batchSize,
		m.commitSeconds, m.sequenceSeconds, m.treeSize, m.checkpointTime, m.witnessedSize, m.witnessedTime, m.retentionTombstones, m.retentionKeysDestroyed}
}
