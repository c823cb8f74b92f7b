#!/bin/sh
# Build the viewer into OUT (default build/viewer): `npm ci` in viewer/
# (the versions pinned by viewer/package-lock.json; node_modules is kept
# between builds), then esbuild bundles viewer/src/main.jsx (h5web's
# @h5web/app with react and react-dom) into OUT/app.js and OUT/app.css,
# next to viewer/index.html. When npm or the registry cannot be reached the
# build still succeeds: OUT then holds one index.html saying how to build
# the viewer, and the server serves that page at /.
set -u
out=${1:-build/viewer}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.html "$out"/*.js "$out"/*.css "$out"/.stamp "$out"/.built

placeholder() {
    cat > "$out/index.html" <<HTML
<!doctype html>
<html><head><meta charset="utf-8"><title>hdf5-async: viewer not built</title></head>
<body style="font-family: sans-serif; max-width: 42em; margin: 3em auto">
<h1>The viewer was not built</h1>
<p>This server was built without its viewer (h5web): <code>$1</code>.</p>
<p>To build it, on a machine that reaches the npm registry, in the source tree:</p>
<pre>make viewer &amp;&amp; make</pre>
<p>(<code>make viewer</code> runs <code>npm ci</code> in <code>viewer/</code> and bundles h5web
with esbuild; <code>make</code> then builds the files into the server.) The HTTP API works
without it: <a href="/api/meta?file=&amp;path=/">/api/meta</a>, <a href="/metrics">/metrics</a>,
<a href="/health">/health</a> (docs/live-view.md).</p>
</body></html>
HTML
    touch "$out/.stamp"
    echo "viewer: not built ($1); the server serves a page that says how to build it" >&2
    exit 0
}

command -v npm >/dev/null 2>&1 || placeholder "npm is not installed"
cd "$root/viewer" || placeholder "no viewer/ directory"
if [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2 || placeholder "npm ci failed (is the npm registry reachable?)"
fi
node_modules/.bin/esbuild src/main.jsx --bundle --minify --format=iife --target=es2020 \
    --define:process.env.NODE_ENV='"production"' --loader:.js=jsx \
    --outfile="$out/app.js" --log-level=warning >&2 || placeholder "esbuild failed"
cp index.html "$out/index.html"
touch "$out/.built" "$out/.stamp"
