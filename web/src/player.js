// The player: reads a broadcast's catalog and init segment, subscribes to
// one video and one audio track, puts each track's groups back in order
// (skipping to the newest group when an older one stalls), decodes with
// WebCodecs and presents video on a canvas and audio through Web Audio on
// one clock.

import { FILTER_LARGEST_OBJECT, FETCH_INVALID_JOINING_REQUEST_ID, GROUP_ORDER_DESCENDING } from "./moq.js";
import { parseInit, parseFragment, codecFor } from "./mp4.js";
import { parseCatalog } from "./catalog.js";

// Playout: how far behind the live edge frames are shown at first, and the
// most the player lets itself fall behind when frames come late.
const START_DELAY_MS = 100;
const MAX_DELAY_MS = 2000;
// With no late frame for CALM_MS, the delay shrinks by DELAY_STEP_MS every
// CALM_STEP_MS.
const CALM_MS = 2000, DELAY_STEP_MS = 100, CALM_STEP_MS = 250;
// Audio this late (ms) still plays, at once; later audio is dropped.
const AUDIO_LATE_PLAY_MS = 60;
// A track playing further than this behind the live edge (beyond the
// playout delay) jumps to its newest group as soon as one is waiting.
const MAX_BEHIND_MS = 1000;
// A group that has made no progress for this long, while a newer group is
// waiting, is abandoned (STOP_SENDING) and the player jumps to the newest.
const SKIP_AFTER_MS = 500;
// More newer groups waiting with their start (key frame) than this: skip
// at once.
const MAX_WAITING_GROUPS = 2;
// Decoded frames waiting to be drawn, at most.
const MAX_FRAMES = 60;
// Chunks waiting in the video decoder beyond which deltas are dropped until
// the next key frame.
const MAX_DECODE_QUEUE = 30;
// Subscriber priorities (lower goes first): audio before video, as it is
// small and a gap in it is heard.
const PRIO_AUDIO = 64, PRIO_VIDEO = 96;

export class Player {
  constructor({ session, namespace, canvas, log, stats, preferMSF }) {
    this.session = session;
    this.preferMSF = !!preferMSF;
    this.ns = namespace;
    this.canvas = canvas;
    this.ctx2d = canvas.getContext("2d");
    this.log = log;
    this.stats = stats;
    this.feeds = [];
    this.subs = [];
    this.frames = []; // decoded VideoFrames waiting for their time, by timestamp
    // The live edge: for each track, the least (arrival wall ms - media
    // ms) seen, its freshest arrival; offset is the largest of them, so
    // that the track that comes last (audio, often, behind the muxer's
    // interleaving) is on time too and the tracks stay in sync.
    this.trackOffsets = new Map();
    this.offset = null;
    this.lastLate = -Infinity; // when a frame was last shown late (wall ms)
    // The newest timestamps (µs) of the joining FETCH's backlog: late by
    // nature, they do not move the playout delay.
    this.videoBacklogUs = -Infinity;
    this.audioBacklogUs = -Infinity;
    this.delay = START_DELAY_MS;
    this.lastShown = -Infinity;
    this.closed = false;
    this.bytes = []; // [wall ms, bytes] of the last seconds, for the bitrate
    this.ended = new Promise((res) => { this.setEnded = res; });
  }

  async start() {
    const t0 = performance.now();
    const catalog = await this.fetchCatalog();
    const inits = new Map();
    const initFor = async (ct) => {
      const key = ct.initData ? "data:" + ct.name : ct.initTrack;
      if (!inits.has(key)) {
        const bytes = ct.initData ? base64(ct.initData) : await this.session.fetchOne(this.ns, ct.initTrack);
        inits.set(key, parseInit(bytes));
      }
      return inits.get(key);
    };
    let video, audio;
    for (const ct of catalog.tracks) {
      if (video && audio) break;
      if (!ct.initData && !ct.initTrack) continue;
      const mp4 = await initFor(ct);
      const m = /^(\d+)\.m4s$/.exec(ct.name);
      const t = (m && mp4.find((x) => x.id === Number(m[1]))) || mp4.find((x) => x.kind === ct.kind) || mp4[0];
      if (!t) continue;
      const codec = ct.codec || codecFor(t);
      if (t.kind === "video" && !video) {
        const config = { codec, codedWidth: t.width, codedHeight: t.height, optimizeForLatency: true };
        if (t.description && t.configBox !== "vpcC") config.description = t.description;
        if ((await VideoDecoder.isConfigSupported(config).catch(() => ({}))).supported) video = { ct, t, config };
        else this.log(`this browser cannot decode video ${codec}; trying the next track`);
      } else if (t.kind === "audio" && !audio) {
        const config = { codec, sampleRate: ct.samplerate || t.sampleRate, numberOfChannels: ct.channels || t.channels };
        if (t.description) config.description = t.description;
        if ((await AudioDecoder.isConfigSupported(config).catch(() => ({}))).supported) audio = { ct, t, config };
        else this.log(`this browser cannot decode audio ${codec}; trying the next track`);
      }
    }
    if (!video && !audio) throw new Error("the catalog has no track this browser can decode");
    this.stats.setup = Math.round(performance.now() - t0);
    if (video) {
      this.stats.codec = video.config.codec;
      this.setupVideo(video);
    }
    if (audio) {
      this.stats.audioCodec = audio.config.codec;
      this.setupAudio(audio);
    }
    this.render = this.render.bind(this);
    requestAnimationFrame(this.render);
    const jobs = [];
    if (video) jobs.push(this.play(video.ct.name, PRIO_VIDEO, GROUP_ORDER_DESCENDING, video.t, (s) => this.decodeVideo(s)));
    if (audio) jobs.push(this.play(audio.ct.name, PRIO_AUDIO, 0, audio.t, (s) => this.decodeAudio(s)));
    await Promise.all(jobs);
  }

  async fetchCatalog() {
    // moq-rs's catalog (".catalog") first, then an MSF catalog ("catalog");
    // the other way round with preferMSF.
    let firstErr;
    for (const name of this.preferMSF ? ["catalog", ".catalog"] : [".catalog", "catalog"]) {
      try {
        const bytes = await this.session.fetchOne(this.ns, name);
        const c = parseCatalog(JSON.parse(new TextDecoder().decode(bytes)));
        this.log(`catalog ${name}: ${c.format}, ${c.tracks.length} tracks: ${c.tracks.map((t) => `${t.name} ${t.codec || "?"}`).join(", ")}`);
        this.stats.catalog = `${name} (${c.format})`;
        return c;
      } catch (err) {
        firstErr = firstErr || err;
        if (this.session.error) throw this.session.error;
      }
    }
    throw new Error(`no catalog: ${firstErr.message || firstErr}`);
  }

  // play subscribes to a track from its latest group: a joining FETCH
  // brings that group's start, the subscription the rest.
  async play(name, priority, groupOrder, track, deliver) {
    let lastUs = null;
    let joined = null; // {group, object}: SUBSCRIBE_OK's largest; the joining FETCH's objects up to it are backlog
    const feed = new GroupFeed(name, (payload, group, object) => {
      this.countBytes(payload.length);
      let samples;
      try {
        samples = parseFragment(payload, new Map([[track.id, track]]));
      } catch (err) {
        this.log(`${name} group ${group}: ${err.message}`);
        return;
      }
      const now = performance.now();
      const backlog = joined !== null && group === joined.group && object <= joined.object;
      for (const s of samples) {
        s.backlog = backlog;
        if (s.track !== track.id) continue;
        s.us = Math.round(s.time * 1e6 / track.timescale);
        s.durationUs = Math.round(s.duration * 1e6 / track.timescale);
        const off = now - s.us / 1000;
        const prev = this.trackOffsets.get(name);
        if (prev === undefined || off < prev) {
          this.trackOffsets.set(name, off);
          this.offset = Math.max(...this.trackOffsets.values());
        }
        lastUs = s.us;
        deliver(s);
      }
    }, (whole, cut) => { this.stats.groupsSkipped += whole; this.stats.groupsCut += cut; },
    // How far the track's playback is past the last sample delivered (ms):
    // below 0 while delivered samples are still to be shown; -Infinity
    // before the first.
    () => (lastUs === null || this.offset === null ? -Infinity : performance.now() - (lastUs / 1000 + this.offset) - this.delay));
    this.feeds.push(feed);
    const sub = await this.session.subscribe(this.ns, name, {
      // Video newest group first: on a link too slow for the whole track,
      // the relay sends each new group's start (its key frame) ahead of
      // the older group's tail, which the feed then drops. Audio keeps the
      // publisher's order: it is small, and a gap in it is heard.
      // (Over WebTransport the relay cannot prioritise streams yet: its
      // webtransport-go has no stream priority. The feed's tail cutting
      // works either way.)
      priority, filter: FILTER_LARGEST_OBJECT, join: true, groupOrder,
      onStream: (group, objects) => feed.stream(group, objects),
      onDone: (d) => { feed.done = true; if (d.code >= 0) this.log(`${name}: PUBLISH_DONE ${d.code} ${d.reason}`); this.checkEnded(); },
    });
    if (this.closed) { sub.unsubscribe(); return; }
    this.subs.push(sub);
    if (!sub.ok.contentExists) {
      sub.joinFetch.then((f) => f.cancel(), () => {}); // nothing to join
      return;
    }
    // The group in progress, from its first object (its key frame), by
    // the joining FETCH sent with the SUBSCRIBE; a relay that had not
    // set the subscription up yet (INVALID_JOINING_REQUEST_ID) is asked
    // again. The group's source is there before objects can come, so
    // that the group waits for them.
    joined = sub.ok.largest;
    {
      let fetch = null, cancelled = false;
      const src = feed.source(joined.group, () => { cancelled = true; if (fetch) fetch.cancel(); });
      sub.joinFetch.catch((err) => {
        if (err.code !== FETCH_INVALID_JOINING_REQUEST_ID) throw err;
        return this.session.fetch({ joining: sub, start: 0 }, priority);
      }).then(async (f) => {
        fetch = f;
        if (cancelled) { f.cancel(); return; }
        for (;;) {
          const o = await f.next();
          if (!o) break;
          if (o.group === sub.ok.largest.group) src.push(o.object, o.status, o.payload);
        }
        src.end();
      }).catch((err) => {
        src.end();
        this.log(`${name}: joining FETCH failed (${err.message}); starting at the next group`);
      });
    }
  }

  checkEnded() {
    if (this.feeds.every((f) => f.done)) this.setEnded("the broadcast ended");
  }

  setupVideo({ config }) {
    this.waitKey = true;
    this.vdec = new VideoDecoder({
      output: (frame) => this.videoFrame(frame),
      error: (err) => { this.log(`video decoder: ${err.message}`); this.resetVideo(config); },
    });
    this.vdec.configure(config);
    this.videoConfig = config;
  }

  resetVideo(config) {
    if (this.closed) return;
    try { this.vdec.close(); } catch { /* closed */ }
    this.setupVideo({ config });
  }

  decodeVideo(s) {
    if (this.vdec.state !== "configured") return;
    if (!s.key && this.vdec.decodeQueueSize > MAX_DECODE_QUEUE) {
      // The decoder is falling behind: drop to the next key frame.
      this.waitKey = true;
    }
    if (this.waitKey && !s.key) { this.stats.framesDropped++; return; }
    this.waitKey = false;
    this.stats.videoChunks++;
    if (s.backlog) this.videoBacklogUs = Math.max(this.videoBacklogUs, s.us);
    this.vdec.decode(new EncodedVideoChunk({ type: s.key ? "key" : "delta", timestamp: s.us, duration: s.durationUs, data: s.data }));
  }

  videoFrame(frame) {
    this.stats.framesDecoded++;
    if (frame.timestamp <= this.lastShown) { frame.close(); return; }
    if (this.frames.length >= MAX_FRAMES) {
      // Nothing is drawing them (a hidden tab): keep the newest.
      this.frames.shift().close();
      this.stats.framesDropped++;
    }
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].timestamp > frame.timestamp) i--;
    this.frames.splice(i, 0, frame);
  }

  // mediaNow is the media time (µs) due on screen at wall time now (ms).
  mediaNow(now) { return (now - this.offset - this.delay) * 1000; }

  render(now) {
    if (this.closed) return;
    requestAnimationFrame(this.render);
    if (this.offset === null || !this.frames.length) return;
    const due = this.mediaNow(performance.now());
    let show = null;
    while (this.frames.length && this.frames[0].timestamp <= due) {
      if (show) {
        show.close();
        if (this.stats.firstFrame !== null) this.stats.framesDropped++;
      }
      show = this.frames.shift();
    }
    if (!show) {
      // Nothing due. If the oldest frame came late, play further behind.
      return;
    }
    const late = (due - show.timestamp) / 1000;
    const wall = performance.now();
    if (late > 3 * 34 && show.timestamp > this.videoBacklogUs && this.stats.firstFrame !== null) {
      // Frames are arriving behind their time: give the link more room.
      this.delay = Math.min(MAX_DELAY_MS, this.delay + late / 2);
      this.lastLate = wall;
    } else if (this.delay > START_DELAY_MS && wall - this.lastLate > CALM_MS) {
      // On time for a while: come back towards the live edge, a little
      // at a time (a few frames are skipped on the way).
      this.delay = Math.max(START_DELAY_MS, this.delay - DELAY_STEP_MS);
      this.lastLate = wall - CALM_MS + CALM_STEP_MS;
    }
    if (this.canvas.width !== show.displayWidth || this.canvas.height !== show.displayHeight) {
      this.canvas.width = show.displayWidth;
      this.canvas.height = show.displayHeight;
    }
    this.ctx2d.drawImage(show, 0, 0);
    this.stats.resolution = `${show.displayWidth}x${show.displayHeight}`;
    this.stats.framesDrawn++;
    this.stats.delay = Math.round(this.delay);
    if (this.stats.firstFrame === null) this.stats.firstFrame = Math.round(performance.now() - this.stats.t0);
    this.lastShown = show.timestamp;
    this.stats.latency = Math.round(performance.now() - (show.timestamp / 1000 + this.offset));
    show.close();
  }

  setupAudio({ config }) {
    // One AudioContext for the player's life: a decoder error makes a new
    // decoder, not a new context (each error leaked one, still running).
    if (!this.actx) {
      this.actx = new AudioContext({ sampleRate: config.sampleRate, latencyHint: "interactive" });
      (window.audioContexts ||= new Set()).add(this.actx);
      this.stats.audioState = this.actx.state;
      this.actx.onstatechange = () => { this.stats.audioState = this.actx.state; };
    }
    this.adec = new AudioDecoder({
      output: (data) => this.audioData(data),
      error: (err) => {
        this.log(`audio decoder: ${err.message}`);
        if (this.closed) return;
        try { this.adec.close(); } catch { /* closed */ }
        this.setupAudio({ config });
      },
    });
    this.adec.configure(config);
  }

  decodeAudio(s) {
    if (this.adec.state !== "configured") return;
    if (s.backlog) this.audioBacklogUs = Math.max(this.audioBacklogUs, s.us);
    this.adec.decode(new EncodedAudioChunk({ type: "key", timestamp: s.us, duration: s.durationUs, data: s.data }));
  }

  audioData(data) {
    this.stats.audioFrames++;
    const ctx = this.actx;
    if (ctx.state !== "running" || this.offset === null) { data.close(); return; }
    // Schedule on the same clock as the video: the wall time this sample
    // is due, converted to the audio context's time.
    const dueWall = data.timestamp / 1000 + this.offset + this.delay;
    const ts = ctx.getOutputTimestamp();
    const at = ts.performanceTime
      ? ts.contextTime + (dueWall - ts.performanceTime) / 1000
      : ctx.currentTime + (dueWall - performance.now()) / 1000; // no output yet
    let start = at;
    if (at < ctx.currentTime) {
      // Late: play further behind from now on (video too, to stay in
      // sync); a little late still plays, at once, rather than leave a gap.
      const late = (ctx.currentTime - at) * 1000;
      if (data.timestamp > this.audioBacklogUs) {
        this.stats.audioLate++;
        this.delay = Math.min(MAX_DELAY_MS, this.delay + late);
        this.lastLate = performance.now();
      }
      if (late > AUDIO_LATE_PLAY_MS) { data.close(); return; }
      start = ctx.currentTime;
    }
    const buf = ctx.createBuffer(data.numberOfChannels, data.numberOfFrames, data.sampleRate);
    for (let c = 0; c < data.numberOfChannels; c++) {
      const dst = new Float32Array(data.numberOfFrames);
      data.copyTo(dst, { planeIndex: c, format: "f32-planar" });
      buf.copyToChannel(dst, c);
    }
    data.close();
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    src.start(start);
  }

  countBytes(n) {
    const now = performance.now();
    this.stats.bytes += n;
    this.bytes.push([now, n]);
    while (this.bytes.length && this.bytes[0][0] < now - 2000) this.bytes.shift();
    this.stats.bitrate = Math.round(this.bytes.reduce((a, [, b]) => a + b, 0) * 8 / 2);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs) { try { sub.unsubscribe(); } catch { /* session gone */ } }
    for (const f of this.feeds) f.close();
    for (const fr of this.frames) fr.close();
    this.frames = [];
    for (const d of [this.vdec, this.adec]) { try { d && d.close(); } catch { /* closed */ } }
    if (this.actx) {
      window.audioContexts.delete(this.actx);
      this.actx.close().catch(() => {});
    }
  }
}

// GroupFeed hands a track's objects over in order: group by group, each
// from object 0, whether they come from subgroup streams or a joining
// FETCH. While the current group waits for its next object and a newer
// group is there, the current group gives way:
//
//   - its tail is cut once playback has shown everything it delivered
//     (behind() reaches 0, in ms past the last sample delivered) and a
//     newer group's first object (its key frame) is here: on a link slower
//     than the track, each group plays its start and drops its tail;
//   - it is abandoned at once when it has made no progress for
//     SKIP_AFTER_MS, when more than MAX_WAITING_GROUPS newer groups have
//     their start here, or when playback is MAX_BEHIND_MS past it.
//
// Giving way cancels the older groups' streams (STOP_SENDING) and jumps to
// the newest group whose start is here (else the newest), so a slow link
// shows the present rather than falling behind.
export class GroupFeed {
  constructor(name, deliver, skipped, behind = () => -Infinity) {
    this.name = name;
    this.deliver = deliver;
    this.skipped = skipped;
    this.behind = behind;
    this.groups = new Map(); // id -> {objects: Map, next, open, cancels: [], progress}
    this.current = null;
    this.floor = -1; // groups at or below this are done with
    this.timer = null;
    this.done = false;
  }

  group(id) {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, objects: new Map(), next: 0, open: 0, cancels: [], progress: performance.now(), ended: false };
      this.groups.set(id, g);
    }
    return g;
  }

  // source registers one more supplier of group id's objects.
  source(id, cancel) {
    if (id <= this.floor) { cancel(); return { push() {}, end() {} }; }
    const g = this.group(id);
    g.open++;
    g.cancels.push(cancel);
    let ended = false;
    return {
      push: (obj, status, payload) => {
        if (ended || this.groups.get(id) !== g) return;
        if (status === 0 && obj >= g.next) g.objects.set(obj, payload);
        else if (status === 0x3 || status === 0x4) g.ended = true; // end of group / track
        this.pump();
      },
      end: () => {
        if (ended) return;
        ended = true;
        g.open--;
        this.pump();
      },
    };
  }

  stream(id, objects) {
    const src = this.source(id, () => objects.cancel());
    (async () => {
      try {
        for (;;) {
          const o = await objects.next();
          if (!o) break;
          src.push(o.object, o.status, o.payload);
        }
      } catch { /* reset or cancelled: the group ends here */ }
      src.end();
    })();
  }

  pump() {
    for (;;) {
      if (this.current === null) {
        if (!this.groups.size) return;
        this.current = Math.min(...this.groups.keys());
      }
      const g = this.groups.get(this.current);
      const payload = g.objects.get(g.next);
      if (payload) {
        g.objects.delete(g.next);
        g.next++;
        g.progress = performance.now();
        this.deliver(payload, g.id, g.next - 1);
        continue;
      }
      if (g.open === 0) { this.finish(g, false); continue; }
      // Waiting for object g.next of the current group.
      const newer = [...this.groups.keys()].filter((k) => k > g.id);
      if (!newer.length) return;
      const behind = this.behind();
      const stalled = performance.now() - g.progress >= SKIP_AFTER_MS;
      // A group to jump to: the newest whose first object (its key frame)
      // is here, else the newest.
      const ready = newer.filter((k) => this.groups.get(k).objects.has(0));
      const target = Math.max(...(ready.length ? ready : newer));
      if (ready.length > MAX_WAITING_GROUPS || stalled || behind > MAX_BEHIND_MS) {
        this.skipTo(target);
        continue;
      }
      // The tail of a group that cannot keep up gives way to the start of
      // a newer one: once playback has caught up with what this group
      // delivered (behind() reaches 0) and a newer group's key frame is
      // here, waiting longer for this group would only freeze the picture.
      if (ready.length && behind >= 0) {
        this.skipTo(target);
        continue;
      }
      let wait = SKIP_AFTER_MS - (performance.now() - g.progress);
      if (ready.length) wait = Math.min(wait, -behind);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.timer = null; this.pump(); }, Math.max(0, wait) + 5);
      return;
    }
  }

  finish(g, cancel) {
    if (cancel) for (const c of g.cancels) c();
    this.groups.delete(g.id);
    this.floor = Math.max(this.floor, g.id);
    if (this.current === g.id) this.current = null;
  }

  // skipTo abandons every group older than newest. It reports how many
  // were abandoned whole (nothing of them delivered) and how many were cut
  // short (their start delivered, their tail dropped).
  skipTo(newest) {
    let whole = 0, cut = 0;
    for (const g of [...this.groups.values()]) {
      if (g.id >= newest) continue;
      this.finish(g, true);
      if (g.next > 0) cut++; else whole++;
    }
    this.current = null;
    if (whole || cut) this.skipped(whole, cut);
  }

  close() {
    clearTimeout(this.timer);
    for (const g of [...this.groups.values()]) this.finish(g, true);
  }
}

function base64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
