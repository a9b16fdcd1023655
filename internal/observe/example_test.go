package observe_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/observe"
	"github.com/camd/camd/internal/web"
	"github.com/camd/camd/store"
)

// Example_daemon shows how camd run wires the watch, the metrics, the
// health checks and the status page into the control API. relayReaders
// stands for the relay (e.g. relay.Server.Stats(name).Readers) and
// beginShutdown for the daemon's normal shutdown path with an exit status.
func Example_daemon() {
	var (
		ctx           context.Context
		log           *slog.Logger
		st            *store.Store
		m             *device.Manager // NewManager(device.Config{LoopInterval: loopInterval, ...}), Start done
		loopInterval  = time.Second
		fdCeiling     = 0 // config; 0 = off
		version       = "v0.1.0"
		relayReaders  func(camera string) int
		beginShutdown func(exitCode int)
		wg            sync.WaitGroup
	)
	if m == nil {
		return // the example is compiled, not run
	}

	observe.CheckNOFILE(len(m.List()), log)
	var srv *api.Server
	fd := observe.NewFDWatch(observe.FDWatchConfig{
		Ceiling:          fdCeiling,
		OnCeiling:        func() { beginShutdown(1) },
		CamerasConnected: observe.ConnectedCameras(m),
		RelayReaders: func() int {
			n := 0
			for _, v := range m.List() {
				n += relayReaders(v.Name)
			}
			return n
		},
		APIConns: func() int { return srv.OpenConns() },
		Logger:   log,
	})
	healthz, readyz := observe.HealthHandlers(m, loopInterval, fd)
	srv, err := api.New(api.Config{
		Manager:     m,
		Version:     version,
		Logger:      log,
		StatusExtra: fd.StatusExtra,
		Mount: map[string]http.Handler{"/metrics": observe.MetricsHandler(observe.MetricsConfig{
			Manager: m, FD: fd, StoreWrites: st.WriteCount, RelayReaders: relayReaders, Version: version, Logger: log,
		})},
		PublicMount: map[string]http.Handler{"/": web.Handler(), "/healthz": healthz, "/readyz": readyz},
	})
	if err != nil {
		return
	}
	// Start the watch once start-up is done (store open, cameras started,
	// listeners bound): its first count is the base.
	wg.Add(2)
	go func() { defer wg.Done(); _ = fd.Run(ctx) }()
	go func() { defer wg.Done(); _ = srv.Run(ctx) }()
	wg.Wait()
}
