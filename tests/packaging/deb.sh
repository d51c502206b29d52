#!/bin/bash
# `cmake --install` lays out the binaries, the desktop entry and the icon; cpack builds a .deb
# holding the same. Usage: deb.sh BUILD_DIR
set -euo pipefail
build=$(readlink -f "$1")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/root" > /dev/null
for f in bin/lincat bin/lincat-studio share/applications/lincat-studio.desktop \
         share/icons/hicolor/scalable/apps/lincat-studio.svg; do
  [ -e "$tmp/root/$f" ] || { echo "FAIL: cmake --install did not install $f"; exit 1; }
done
grep -q "^Exec=lincat-studio" "$tmp/root/share/applications/lincat-studio.desktop"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" > cpack.log 2>&1) || { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/*.deb)
dpkg-deb -c "$deb" > "$tmp/contents"
for f in ./usr/bin/lincat ./usr/bin/lincat-studio ./usr/share/applications/lincat-studio.desktop; do
  grep -q " $f\$" "$tmp/contents" || { echo "FAIL: $f missing from $(basename "$deb")"; exit 1; }
done
dpkg-deb -f "$deb" Package Version Depends
echo "PASS: $(basename "$deb"), $(du -h "$deb" | cut -f1)"
