//go:build tools

// This file pins modules that packages are being built against, so that
// `go mod tidy` keeps them while those packages are still being written.
package tools

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/kardianos/service"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/bbolt"
	_ "gopkg.in/yaml.v3"
)
