package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/camd/camd/stream/sim"
)

func newSimCmd() *cobra.Command {
	var o simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "serve simulated RTSP cameras with injectable faults",
		Long: `Serves simulated RTSP cameras (H.264 640x360 25 fps plus silent G.711 audio)
until SIGINT or SIGTERM, with faults injectable over HTTP:

  curl -X POST -d '{"fault":"stall","duration":"10s"}' http://CONTROL/cameras/3/fault

Faults: stall, drop, refuse, garbage, no-video, clear; GET /cameras lists
them. The first line on stdout gives the RTSP and control addresses.`,
		Example: `  camd sim
  camd sim --cameras 16 --listen 127.0.0.1:0 --control off
  camd sim --user admin --pass secret --no-udp`,
		Args: noArgs("sim"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdSim(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.cameras, "cameras", 4, "number of cameras, served as /cam1 … /camN")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8555", "RTSP address (port 0 picks a free one)")
	fs.StringVar(&o.control, "control", "127.0.0.1:8556", `HTTP control address ("" or off disables it)`)
	fs.StringVar(&o.udp, "udp", "", "UDP RTP address, even port; RTCP uses the next one (default: a free pair on the --listen host)")
	fs.BoolVar(&o.noUDP, "no-udp", false, "offer only the TCP transport")
	fs.StringVar(&o.user, "user", "", "user every request must authenticate as (default: no authentication)")
	fs.StringVar(&o.pass, "pass", "", "password for --user")
	fs.BoolVar(&o.stamp, "stamp", false, "put the send time in an SEI NAL unit before every frame's picture (for latency measurements)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log every connection, not only sessions and faults")
	return cmd
}

// simFlags are camd sim's flags.
type simFlags struct {
	cameras                          int
	listen, control, udp, user, pass string
	noUDP, verbose, stamp            bool
}

// cmdSim serves simulated cameras until SIGINT or SIGTERM.
func cmdSim(ctx context.Context, o *simFlags, stdout, stderr io.Writer) error {
	cameras, listen, control, udp, noUDP, user, pass, verbose := &o.cameras, &o.listen, &o.control, &o.udp, &o.noUDP, &o.user, &o.pass, &o.verbose
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
		Stamp:         o.stamp,
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
