// Unit tests of the page's fMP4 parsing and group ordering (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseInit, parseFragment, codecFor } from "./mp4.js";
import { GroupFeed, Player } from "./player.js";
import { parseCatalog } from "./catalog.js";

test("init segment: moq-pub's H.264 + AAC test clip", () => {
  // catalog/testdata/h264_aac.mp4: ffmpeg's testsrc2 1280x720, libx264
  // High 3.1, AAC stereo 44.1 kHz (see its README).
  const tracks = parseInit(new Uint8Array(readFileSync(new URL("../../catalog/testdata/h264_aac.mp4", import.meta.url))));
  assert.equal(tracks.length, 2);
  const [v, a] = tracks;
  assert.deepEqual([v.kind, v.id, v.width, v.height, v.configBox, codecFor(v)], ["video", 1, 1280, 720, "avcC", "avc1.64001f"]);
  assert.ok(v.timescale > 0);
  assert.deepEqual([a.kind, a.id, a.channels, a.sampleRate, codecFor(a)], ["audio", 2, 2, 44100, "mp4a.40.2"]);
  // AudioSpecificConfig: AAC LC (2), 44.1 kHz (index 4), 2 channels.
  assert.deepEqual([...a.description.subarray(0, 2)], [0x12, 0x10]);
});

test("init segments of other codecs parse", () => {
  for (const [file, box] of [["hvc1_opus.mp4", "hvcC"], ["av1_ac3.mp4", "av1C"], ["vp9_eac3.mp4", "vpcC"]]) {
    const tracks = parseInit(new Uint8Array(readFileSync(new URL(`../../catalog/testdata/${file}`, import.meta.url))));
    assert.equal(tracks[0].configBox, box, file);
  }
});

// box writes an ISO BMFF box.
function box(type, ...parts) {
  const body = parts.flatMap((p) => [...p]);
  const n = 8 + body.length;
  return new Uint8Array([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, ...new TextEncoder().encode(type), ...body]);
}
const u32 = (v) => [v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];

test("fragment: samples with trun fields and tfhd defaults", () => {
  const mdatData = [1, 2, 3, 4, 5, 6, 7];
  const build = (offset) => {
    const tfhd = box("tfhd", [0, 0x02, 0, 0x28], u32(1), u32(512), u32(0x10000)); // default-base-is-moof, duration, flags
    const tfdt = box("tfdt", [1, 0, 0, 0], u32(0), u32(90000));
    const trun = box("trun", [0, 0, 0x0a, 0x05], u32(2), u32(offset), u32(0 /* first: sync */), u32(3), u32(100), u32(4), u32(50));
    const moof = box("moof", box("mfhd", [0, 0, 0, 0], u32(1)), box("traf", tfhd, tfdt, trun));
    return [moof, box("mdat", mdatData)];
  };
  let [moof] = build(0);
  const [m2, mdat] = build(moof.length + 8);
  const frag = new Uint8Array([...m2, ...mdat]);
  const tracks = new Map([[1, { id: 1, trex: { duration: 0, size: 0, flags: 0 } }]]);
  const s = parseFragment(frag, tracks);
  assert.equal(s.length, 2);
  assert.deepEqual([s[0].time, s[0].duration, s[0].key, [...s[0].data]], [90100, 512, true, [1, 2, 3]]);
  assert.deepEqual([s[1].time, s[1].decodeTime, s[1].key, [...s[1].data]], [90000 + 512 + 50, 90512, false, [4, 5, 6, 7]]);
  assert.throws(() => parseFragment(frag.subarray(0, frag.length - 2), tracks));
});

// feed returns a GroupFeed and what it delivered and skipped: skipped
// counts every group abandoned, whole counts those of which nothing was
// delivered, cut those whose tail was dropped.
function feed(behind) {
  const out = { got: [], skipped: 0, whole: 0, cut: 0 };
  out.feed = new GroupFeed("t", (payload, group) => out.got.push(`${group}/${payload}`), (whole, cut) => {
    out.skipped += whole + cut;
    out.whole += whole;
    out.cut += cut;
  }, behind);
  return out;
}

test("groups come out in order, from object 0, whatever the sources' order", () => {
  const f = feed();
  const live = f.feed.source(4, () => {});
  live.push(2, 0, "c"); // the subscription starts mid-group...
  const fetched = f.feed.source(4, () => {});
  fetched.push(0, 0, "a"); // ...the joining FETCH brings its start
  assert.deepEqual(f.got, ["4/a"]);
  fetched.push(1, 0, "b");
  fetched.end();
  assert.deepEqual(f.got, ["4/a", "4/b", "4/c"]);
  const next = f.feed.source(5, () => {});
  next.push(0, 0, "x"); // waits: group 4 is still open
  assert.deepEqual(f.got, ["4/a", "4/b", "4/c"]);
  live.push(3, 0x3, null); // end of group
  live.end();
  assert.deepEqual(f.got, ["4/a", "4/b", "4/c", "5/x"]);
  assert.equal(f.skipped, 0);
  let cancelled = false;
  f.feed.source(3, () => { cancelled = true; }).push(0, 0, "late");
  assert.ok(cancelled, "a group older than the one playing is cancelled");
  assert.deepEqual(f.got.at(-1), "5/x");
  f.feed.close();
});

test("a stalled group is abandoned for the newest once newer ones pile up", () => {
  const f = feed();
  let cancelled = 0;
  const g1 = f.feed.source(1, () => { cancelled++; });
  g1.push(0, 0, "a");
  f.feed.source(2, () => { cancelled++; }).push(0, 0, "b");
  f.feed.source(3, () => { cancelled++; }).push(0, 0, "c");
  assert.deepEqual(f.got, ["1/a"]);
  const g4 = f.feed.source(4, () => {});
  g4.push(0, 0, "d"); // three newer groups waiting: skip to the newest
  g4.push(1, 0, "e");
  assert.deepEqual(f.got, ["1/a", "4/d", "4/e"]);
  assert.equal(f.skipped, 3);
  assert.deepEqual([f.whole, f.cut], [2, 1]);
  assert.equal(cancelled, 3);
  g1.push(1, 0, "too late");
  assert.deepEqual(f.got.at(-1), "4/e");
  f.feed.close();
});

test("a group that makes no progress for a while is abandoned", async () => {
  const f = feed();
  f.feed.source(1, () => {}).push(0, 0, "a");
  f.feed.source(2, () => {}).push(0, 0, "b");
  assert.deepEqual(f.got, ["1/a"]);
  await new Promise((res) => setTimeout(res, 700));
  assert.deepEqual(f.got, ["1/a", "2/b"]);
  assert.equal(f.skipped, 1);
  f.feed.close();
});

test("a group playing too far behind live gives way to a newer one at once", () => {
  let behind = -100; // frames delivered are still to be shown
  const out = [];
  const f = new GroupFeed("t", (p, g) => out.push(`${g}/${p}`), () => {}, () => behind);
  const g1 = f.source(1, () => {});
  g1.push(0, 0, "a");
  f.source(2, () => {}).push(0, 0, "b");
  assert.deepEqual(out, ["1/a"]); // group 1 still progressing: wait for it
  behind = 1500;
  g1.push(1, 0, "a1"); // progress, but far behind live
  assert.deepEqual(out, ["1/a", "1/a1", "2/b"]);
  f.close();
});

test("a group's tail gives way to the next group's key frame once playback catches up", () => {
  let behind = -200; // playback is 200 ms short of the last frame delivered
  const f = feed(() => behind);
  let cancelled = 0;
  const g1 = f.feed.source(1, () => { cancelled++; });
  g1.push(0, 0, "k1");
  g1.push(1, 0, "d1");
  const g2 = f.feed.source(2, () => {});
  g2.push(1, 0, "d2"); // the next group's key frame is not here yet
  behind = 10;
  g2.push(2, 0, "d2'"); // no start to jump to: keep waiting for group 1
  assert.deepEqual(f.got, ["1/k1", "1/d1"]);
  behind = -50;
  g2.push(0, 0, "k2"); // a start to jump to, but frames of group 1 still to show
  assert.deepEqual(f.got, ["1/k1", "1/d1"]);
  g1.push(2, 0, "d1'"); // group 1 progresses: delivered
  behind = 0;
  g1.push(4, 0, "gap"); // object 3 missing, playback caught up: cut group 1's tail
  assert.deepEqual(f.got, ["1/k1", "1/d1", "1/d1'", "2/k2", "2/d2", "2/d2'"]);
  assert.deepEqual([f.whole, f.cut, cancelled], [0, 1, 1]);
  f.feed.close();
});

test("a cut waits for playback to catch up, by a timer", async () => {
  let caughtUp = performance.now() + 60;
  const f = feed(() => performance.now() - caughtUp);
  f.feed.source(1, () => {}).push(0, 0, "k1");
  f.feed.source(2, () => {}).push(0, 0, "k2");
  assert.deepEqual(f.got, ["1/k1"]);
  await new Promise((res) => setTimeout(res, 200)); // well short of the 500 ms stall rule
  assert.deepEqual(f.got, ["1/k1", "2/k2"]);
  assert.deepEqual([f.whole, f.cut], [0, 1]);
  f.feed.close();
});

test("catalogs: moq-rs's and MSF's", () => {
  const rs = parseCatalog({
    version: 1, streamingFormat: 1, streamingFormatVersion: "0.2", supportsDeltaUpdates: false,
    commonTrackFields: { namespace: "live/one", packaging: "cmaf" },
    tracks: [
      { name: "1.m4s", initTrack: "0.mp4", selectionParams: { codec: "avc1.64001f", width: 1280, height: 720 } },
      { name: "2.m4s", initTrack: "0.mp4", selectionParams: { codec: "mp4a.40.2", samplerate: 48000, channelConfig: "2" } },
    ],
  });
  assert.equal(rs.format, "moq-rs");
  assert.deepEqual(rs.tracks.map((t) => [t.name, t.kind, t.codec, t.initTrack]),
    [["1.m4s", "video", "avc1.64001f", "0.mp4"], ["2.m4s", "audio", "mp4a.40.2", "0.mp4"]]);
  assert.equal(rs.tracks[1].channels, 2);
  const msf = parseCatalog({
    version: 1,
    tracks: [
      { name: "video", packaging: "cmaf", role: "video", codec: "avc1.64001f", width: 640, height: 360, initData: "AAAA" },
      { name: "audio", packaging: "loc", codec: "opus", samplerate: 48000 },
    ],
  });
  assert.equal(msf.format, "MSF");
  assert.deepEqual(msf.tracks.map((t) => [t.name, t.kind, t.initData]), [["video", "video", "AAAA"]]);
  const d01 = parseCatalog({
    version: "draft-01",
    tracks: [
      { name: "1.m4s", packaging: "cmaf", isLive: true, role: "video", codec: "avc1.64001f", initRef: "0" },
      { name: "2.m4s", packaging: "cmaf", isLive: true, role: "audio", codec: "mp4a.40.2", initRef: "1" },
    ],
    initDataList: [{ id: "0", type: "inline", data: "AAAB" }, { id: "1", type: "inline", data: "AAAC" }],
  });
  assert.deepEqual(d01.tracks.map((t) => [t.name, t.kind, t.initData]), [["1.m4s", "video", "AAAB"], ["2.m4s", "audio", "AAAC"]]);
  assert.equal(d01.format, "MSF");
  assert.throws(() => parseCatalog({ version: "draft-01", tracks: [{ name: "v", packaging: "cmaf", initRef: "9" }] }), /initRef/);
  assert.throws(() => parseCatalog({}));
});

test("an audio decoder error makes a new decoder, not a new AudioContext", () => {
  let made = 0, closed = 0;
  const errors = [];
  globalThis.window = {};
  globalThis.AudioContext = class {
    constructor() { made++; this.state = "running"; }
    close() { closed++; return Promise.resolve(); }
  };
  globalThis.AudioDecoder = class {
    constructor({ error }) { errors.push(error); this.state = "unconfigured"; }
    configure() { this.state = "configured"; }
    close() { this.state = "closed"; }
  };
  try {
    const p = Object.create(Player.prototype);
    Object.assign(p, { stats: {}, log() {}, closed: false, subs: [], feeds: [], frames: [] });
    p.setupAudio({ config: { sampleRate: 48000 } });
    errors.at(-1)(new Error("bad frame"));
    errors.at(-1)(new Error("bad frame"));
    assert.equal(errors.length, 3, "a decoder per error");
    p.close();
    assert.equal(made, 1, "AudioContexts made");
    assert.equal(closed, made, "AudioContexts closed");
    assert.equal(window.audioContexts.size, 0);
  } finally {
    delete globalThis.window;
    delete globalThis.AudioContext;
    delete globalThis.AudioDecoder;
  }
});
