#!/bin/sh
# Regenerates clip.h264, the video every simulated camera loops.
#
# 100 frames (4 s) of testsrc2 at 640x360, 25 fps, with temporal noise so that
# x264 really spends about 1 Mbit/s (a plain test pattern compresses to almost
# nothing, which would make the simulator an unrealistically light load).
# Constrained baseline (no B-frames, so PTS == DTS), one slice per frame, an
# IDR every 25 frames (1 s) and the clip length a multiple of it, so that the
# loop point is an IDR. repeat-headers puts SPS and PPS in front of every IDR;
# SEI (x264's settings banner) is stripped. Output is raw Annex B.
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=640x360:rate=25,noise=alls=12:allf=t" \
	-frames:v 100 -an \
	-c:v libx264 -threads 1 -profile:v baseline -level 3.0 -pix_fmt yuv420p \
	-preset veryfast -b:v 1000k -maxrate 1100k -bufsize 550k \
	-g 25 -keyint_min 25 -sc_threshold 0 -x264-params repeat-headers=1 \
	-bsf:v filter_units=remove_types=6 \
	-f h264 clip.h264
