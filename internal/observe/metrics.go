package observe

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/camd/camd/device"
)

// MetricsConfig configures MetricsHandler and NewCollector.
type MetricsConfig struct {
	// Manager is the camera registry. Required.
	Manager *device.Manager
	// FD, if set, provides camd_open_fds and camd_expected_fds.
	FD *FDWatch
	// RelayReaders, if set, gives a camera's number of relay readers
	// (camd_camera_relay_readers).
	RelayReaders func(camera string) int
	// StoreWrites, if set, gives the store's committed write transactions
	// (camd_store_write_transactions_total), e.g. store.Store.WriteCount.
	StoreWrites func() uint64
	// EventWrites, if set, gives the events written to the history
	// (camd_event_writes_total), e.g. store.Store.EventWriteCount.
	EventWrites func() uint64
	// Version is reported by camd_build_info. It defaults to "unknown".
	Version string
	// Logger receives errors of the handler. It defaults to slog.Default().
	Logger *slog.Logger
	// Extra are more collectors served beside camd's own (the notifiers').
	Extra []prometheus.Collector
}

var (
	cameraLabels = []string{"camera"}

	descState = prometheus.NewDesc("camd_camera_state",
		"Live state of the camera: 1 for the current state, 0 for the others.",
		[]string{"camera", "state"}, nil)
	descFrames = prometheus.NewDesc("camd_camera_frames_total",
		"Video frames (access units) received since camd started.", cameraLabels, nil)
	descKeyframes = prometheus.NewDesc("camd_camera_keyframes_total",
		"Video keyframes received since camd started.", cameraLabels, nil)
	descBytes = prometheus.NewDesc("camd_camera_bytes_total",
		"Video payload bytes received since camd started.", cameraLabels, nil)
	descReconnects = prometheus.NewDesc("camd_camera_reconnects_total",
		"Connections of the camera that failed or closed and were retried.", cameraLabels, nil)
	descStalls = prometheus.NewDesc("camd_camera_stalls_total",
		"Times the camera stopped sending video while connected and was restarted.", cameraLabels, nil)
	descRestarts = prometheus.NewDesc("camd_camera_restarts_total",
		"Full restarts of the camera's connection (operator, stall or forced).", cameraLabels, nil)
	descCrashes = prometheus.NewDesc("camd_camera_crashes_total",
		"Times the camera was declared CRASHED.", cameraLabels, nil)
	descLastFrame = prometheus.NewDesc("camd_camera_last_frame_timestamp_seconds",
		"Unix time of the last video frame; absent before the first.", cameraLabels, nil)
	descFPS = prometheus.NewDesc("camd_camera_fps",
		"Video frames per second, recent average.", cameraLabels, nil)
	// Bytes, not bits: Prometheus base units (promtool says so); ×8 for
	// the bitrate in bits per second.
	descBitrate = prometheus.NewDesc("camd_camera_bitrate_bytes_per_second",
		"Video bitrate, recent average, in bytes per second (multiply by 8 for bits).", cameraLabels, nil)
	descReaders = prometheus.NewDesc("camd_camera_relay_readers",
		"Clients reading the camera through camd's relay.", cameraLabels, nil)
	descCameras = prometheus.NewDesc("camd_cameras",
		"Cameras in each live state.", []string{"state"}, nil)
	descOpenFDs = prometheus.NewDesc("camd_open_fds",
		"Open file descriptors at the last count of the descriptor watch, by kind.", []string{"kind"}, nil)
	descExpectedFDs = prometheus.NewDesc("camd_expected_fds",
		"Open file descriptors camd expects to hold (base, cameras, readers, API connections).", nil, nil)
	descFDDegraded = prometheus.NewDesc("camd_fds_degraded",
		"1 while open file descriptors are far above the expectation.", nil, nil)
	descStoreWrites = prometheus.NewDesc("camd_store_write_transactions_total",
		"Write transactions committed to the store since camd started.", nil, nil)
	descEventWrites = prometheus.NewDesc("camd_event_writes_total",
		"Events written to the event history since camd started.", nil, nil)
	descBuildInfo = prometheus.NewDesc("camd_build_info",
		"Always 1; the label says which camd is running.", []string{"version"}, nil)
)

// collector is a prometheus.Collector over a Manager. It reads everything
// on scrape; it has no goroutine and no state of its own.
type collector struct {
	cfg MetricsConfig
}

// NewCollector returns a prometheus.Collector of camd's own metrics (not
// the process and Go collectors, which MetricsHandler adds).
func NewCollector(cfg MetricsConfig) prometheus.Collector {
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	return &collector{cfg: cfg}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descFrames, descKeyframes, descBytes, descReconnects,
		descStalls, descRestarts, descCrashes, descLastFrame, descFPS, descBitrate, descCameras, descBuildInfo} {
		ch <- d
	}
	if c.cfg.RelayReaders != nil {
		ch <- descReaders
	}
	if c.cfg.FD != nil {
		ch <- descOpenFDs
		ch <- descExpectedFDs
		ch <- descFDDegraded
	}
	if c.cfg.StoreWrites != nil {
		ch <- descStoreWrites
	}
	if c.cfg.EventWrites != nil {
		ch <- descEventWrites
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, c.cfg.Version)
	if m := c.cfg.Manager; m != nil {
		for st, n := range m.Counts() {
			ch <- prometheus.MustNewConstMetric(descCameras, prometheus.GaugeValue, float64(n), st.String())
		}
		for _, v := range m.List() {
			c.collectCamera(ch, v)
		}
	}
	if c.cfg.FD != nil {
		counts, expected := c.cfg.FD.Counts()
		if counts.Total > 0 {
			for _, k := range []struct {
				kind string
				n    int
			}{{"sockets", counts.Sockets}, {"files", counts.Files}, {"pipes", counts.Pipes},
				{"events", counts.Events}, {"other", counts.Other}} {
				ch <- prometheus.MustNewConstMetric(descOpenFDs, prometheus.GaugeValue, float64(k.n), k.kind)
			}
			ch <- prometheus.MustNewConstMetric(descExpectedFDs, prometheus.GaugeValue, float64(expected))
		}
		deg, _ := c.cfg.FD.Degraded()
		ch <- prometheus.MustNewConstMetric(descFDDegraded, prometheus.GaugeValue, b2f(deg))
	}
	if c.cfg.StoreWrites != nil {
		ch <- prometheus.MustNewConstMetric(descStoreWrites, prometheus.CounterValue, float64(c.cfg.StoreWrites()))
	}
	if c.cfg.EventWrites != nil {
		ch <- prometheus.MustNewConstMetric(descEventWrites, prometheus.CounterValue, float64(c.cfg.EventWrites()))
	}
}

func (c *collector) collectCamera(ch chan<- prometheus.Metric, v device.View) {
	name := v.Name
	for _, st := range device.States {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, b2f(v.State == st), name, st.String())
	}
	counter := func(d *prometheus.Desc, n uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), name)
	}
	gauge := func(d *prometheus.Desc, x float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, name)
	}
	counter(descFrames, v.Frames)
	counter(descKeyframes, v.Keyframes)
	counter(descBytes, v.Bytes)
	counter(descReconnects, v.Reconnects)
	counter(descStalls, v.Stalls)
	counter(descRestarts, v.Restarts)
	counter(descCrashes, v.Crashes)
	if !v.LastFrameAt.IsZero() {
		gauge(descLastFrame, float64(v.LastFrameAt.UnixNano())/1e9)
	}
	gauge(descFPS, v.FPS)
	gauge(descBitrate, v.BitrateBPS/8)
	if c.cfg.RelayReaders != nil {
		gauge(descReaders, float64(c.cfg.RelayReaders(name)))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsHandler serves camd's metrics, plus the standard process and Go
// collectors, in the Prometheus text format from a private registry.
// Mount it behind the API's authentication: metrics carry camera names.
func MetricsHandler(cfg MetricsConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(cfg),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	reg.MustRegister(cfg.Extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{cfg.Logger},
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape that piles up behind slow ones is refused instead.
		MaxRequestsInFlight: 4,
	})
}

// slogPromLogger adapts slog to promhttp's Logger.
type slogPromLogger struct{ l *slog.Logger }

func (s slogPromLogger) Println(v ...any) {
	s.l.Warn("metrics scrape error", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
