// Parse HLS playlists with the strict npm hls-parser; exit 1 with the reason on any error.
const fs = require("fs");
const HLS = require("hls-parser");

HLS.setOptions({ strictMode: true });
let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    const playlist = HLS.parse(fs.readFileSync(file, "utf8"));
    const kind = playlist.isMasterPlaylist ? "master" : "media";
    const count = playlist.isMasterPlaylist ? playlist.variants.length : playlist.segments.length;
    console.log(`${file}\t${kind}\t${count}`);
  } catch (err) {
    console.error(`${file}: ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
