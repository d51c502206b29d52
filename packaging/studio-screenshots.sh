#!/usr/bin/env bash
# Screenshots of every studio view after the main job, in a real X server (Xvfb), for review:
#   packaging/studio-screenshots.sh [WORKSPACE] [OUT]
# WORKSPACE (default lincat-workspace/): the main job's; it is run first (lincat linearize)
# when the folder does not exist yet. OUT (default screenshots/): one PNG per view. The studio
# selects the newest stage-1 run and fills the views that compute before each picture: error
# by position, the attention maps of a data sample (256 tokens on stories15M), generation and
# decode speed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LINCAT_BUILD_DIR:-$root/build}
ws=${1:-lincat-workspace}
out=${2:-screenshots}
command -v xvfb-run >/dev/null || { echo "studio-screenshots: needs xvfb-run (apt-get install xvfb xauth)" >&2; exit 2; }
[ -x "$build/lincat-studio" ] || { echo "studio-screenshots: no $build/lincat-studio; run packaging/setup.sh" >&2; exit 2; }
if [ ! -d "$ws" ]; then
  echo "studio-screenshots: no workspace $ws; running the main job first"
  "$build/lincat" linearize --model default --workspace "$ws"
fi
unset QT_QPA_PLATFORM  # a real X server, not the offscreen platform
xvfb-run -a -s "-screen 0 1600x1000x24" "$build/lincat-studio" --model default --workspace "$ws" --screenshots "$out"
ls -l "$out"
