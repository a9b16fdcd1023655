// Package observe lets camd watch itself and be watched.
//
// FDWatch counts the process's open file descriptors by kind every few
// seconds and compares the count with what camd should hold: a base
// measured once start-up is done, plus so much per connected camera (by
// transport), per relay reader and per open API connection. Far above that
// it logs a warning and marks health as degraded; above an optional hard
// ceiling it asks the daemon to shut down so that its supervisor restarts
// it (field failure 2 of
// docs/ARCHITECTURE.md#the-failures-camd-exists-to-prevent). CheckNOFILE
// warns at start-up when the soft limit on open files is too low for the
// configured cameras.
//
// MetricsHandler serves /metrics in the Prometheus text format, collected
// on scrape from the device.Manager (no background goroutine).
// HealthHandlers serves /healthz (the supervision loop has run recently)
// and /readyz (start-up recovery is done); neither reveals a camera's name
// or URL, so both may be mounted without authentication.
package observe
