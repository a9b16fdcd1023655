package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/camd/camd/stream/sim"
)

// cmdSim serves simulated cameras until SIGINT or SIGTERM.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("camd sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cameras := fs.Int("cameras", 4, "number of cameras, served as /cam1 … /camN")
	listen := fs.String("listen", "127.0.0.1:8555", "RTSP address (port 0 picks a free one)")
	control := fs.String("control", "127.0.0.1:8556", `HTTP control address ("" or off disables it)`)
	udp := fs.String("udp", "", "UDP RTP address, even port; RTCP uses the next one (default: a free pair on the --listen host)")
	noUDP := fs.Bool("no-udp", false, "offer only the TCP transport")
	user := fs.String("user", "", "user every request must authenticate as (default: no authentication)")
	pass := fs.String("pass", "", "password for --user")
	stamp := fs.Bool("stamp", false, "put the send time in an SEI NAL unit before every frame's picture (for latency measurements)")
	verbose := fs.Bool("v", false, "log every connection, not only sessions and faults")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: camd sim [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Serves simulated RTSP cameras (H.264 640x360 25 fps plus silent G.711 audio)")
		fmt.Fprintln(stderr, "with faults injectable over HTTP:")
		fmt.Fprintln(stderr, `  curl -X POST -d '{"fault":"stall","duration":"10s"}' http://CONTROL/cameras/3/fault`)
		fmt.Fprintln(stderr, "  faults: stall, drop, refuse, garbage, no-video, clear; GET /cameras lists them.")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("sim: unexpected argument %q", fs.Arg(0))
	}

	if *control == "off" {
		*control = ""
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	srv, err := sim.New(sim.Config{
		Cameras:       *cameras,
		Listen:        *listen,
		ControlListen: *control,
		UDPRTPAddress: *udp,
		NoUDP:         *noUDP,
		User:          *user,
		Pass:          *pass,
		Stamp:         *stamp,
		Logger:        slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Harnesses that start "camd sim" with port 0 read the ports back from
	// these lines, so their format is fixed.
	ctl := "off"
	if a := srv.ControlAddr(); a != "" {
		ctl = "http://" + a
	}
	fmt.Fprintf(stdout, "sim: rtsp on %s (cam1..cam%d), control on %s\n", srv.Addr(), srv.Cameras(), ctl)
	if a := srv.UDPAddr(); a != "" {
		fmt.Fprintf(stdout, "sim: udp rtp on %s\n", a)
	}
	w, h, fps := srv.Info()
	fmt.Fprintf(stdout, "sim: video h264 %dx%d %d fps, e.g. %s\n", w, h, fps, srv.URL(1))

	<-ctx.Done()
	fmt.Fprintln(stderr, "sim: stopping")
	return nil
}
