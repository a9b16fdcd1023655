#!/usr/bin/python3
"""A camera camd's authors did not write: the GStreamer RTSP server.

Serves one test stream at rtsp://127.0.0.1:PORT/PATH and prints, on stdout:
  PORT <n>                       once it listens
  REQ <method> <auth|noauth>     for every request, before authentication
  AUTH <ok|fail>                 for every request that carried credentials
so that a test can count the logins a client tried.

Run with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0).
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gio, Gst, GstRtsp, GstRtspServer  # noqa: E402


def say(*words):
    print(*words, flush=True)


def video(a):
    src = (
        "videotestsrc is-live=true pattern=ball ! "
        f"video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1 ! "
    )
    if a.codec == "h264":
        enc = (
            f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={a.kbps} "
            f"key-int-max={a.gop} "
        )
        if a.intra_refresh:
            enc += "intra-refresh=true "
        return src + enc + "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
    if a.codec == "h265":
        return (
            src
            + f"x265enc tune=zerolatency speed-preset=ultrafast bitrate={a.kbps} key-int-max={a.gop} "
            + "! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    raise SystemExit(f"unknown codec {a.codec}")


def audio(a):
    src = "audiotestsrc is-live=true wave=sine ! "
    if a.audio == "opus":
        return src + "audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay name=pay1 pt=97"
    if a.audio == "pcmu":
        return src + "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
    if a.audio == "pcma":
        return src + "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    if a.audio == "aac":
        return src + "audio/x-raw,rate=44100,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97"
    raise SystemExit(f"unknown audio {a.audio}")


class CountingAuth(GstRtspServer.RTSPAuth):
    """The server's own authentication, with every attempt printed."""

    def do_authenticate(self, ctx):
        hdr = ctx.request.get_header(GstRtsp.RTSPHeaderField.AUTHORIZATION, 0)
        ok = GstRtspServer.RTSPAuth.do_authenticate(self, ctx)
        if hdr[0] == GstRtsp.RTSPResult.OK:
            say("AUTH", "ok" if ok and ctx.token is not None else "fail")
        return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--path", default="/cam")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--codec", default="h264")
    p.add_argument("--audio", default="")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--kbps", type=int, default=500)
    p.add_argument("--gop", type=int, default=25, help="frames between keyframes")
    p.add_argument("--intra-refresh", action="store_true")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--digest", action="store_true", help="Digest instead of Basic")
    p.add_argument("--tls-cert", default="", help="PEM file with certificate and key: serve rtsps")
    a = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))

    launch = video(a)
    if a.audio:
        launch += " " + audio(a)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( " + launch + " )")
    factory.set_shared(True)

    auth = None
    if a.user or a.tls_cert:
        auth = CountingAuth()
    if a.user:
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", a.user)
        if a.digest:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(a.user, a.password, token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
        role = Gst.Structure.from_string(
            f"{a.user}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
        factory.add_role_from_structure(role)
    if a.tls_cert and not a.user:
        # An auth object denies everyone by default; rtsps alone needs one.
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "anonymous")
        auth.set_default_token(token)
        factory.add_role_from_structure(Gst.Structure.from_string(
            "anonymous, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0])
    if a.tls_cert:
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(a.tls_cert))
    if auth is not None:
        server.set_auth(auth)

    server.get_mount_points().add_factory(a.path, factory)

    def on_client(_server, client):
        def on_req(_client, ctx, method):
            hdr = ctx.request.get_header(GstRtsp.RTSPHeaderField.AUTHORIZATION, 0)
            say("REQ", method, "auth" if hdr[0] == GstRtsp.RTSPResult.OK else "noauth")
        for sig, method in (
            ("pre-options-request", "OPTIONS"),
            ("pre-describe-request", "DESCRIBE"),
            ("pre-setup-request", "SETUP"),
            ("pre-play-request", "PLAY"),
            ("pre-get-parameter-request", "GET_PARAMETER"),
            ("pre-teardown-request", "TEARDOWN"),
        ):
            client.connect(sig, lambda c, ctx, m=method: (on_req(c, ctx, m), GstRtsp.RTSPStatusCode.OK)[1])

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        raise SystemExit("attach failed")
    say("PORT", server.get_bound_port())

    loop = GLib.MainLoop()
    for s in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, loop.quit)
    loop.run()


if __name__ == "__main__":
    sys.exit(main())
