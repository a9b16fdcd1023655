//go:build tools

// This file pins modules that packages are being built against, so that
// `go mod tidy` keeps them while those packages are still being written.
package tools

import (
	_ "github.com/bluenviron/gortsplib/v5"
	_ "github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	_ "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	_ "github.com/chromedp/chromedp"
	_ "github.com/kardianos/service"
	_ "github.com/pion/rtp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/yaml.v3"
)
