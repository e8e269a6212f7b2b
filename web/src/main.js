// The watch page: lists the broadcasts under a namespace prefix
// (SUBSCRIBE_NAMESPACE) and plays one (?name=NAME). It reconnects when the
// session ends: a relay restart, a lost network, GOAWAY.
//
// Query parameters: name (broadcast namespace, fields split on "/"),
// prefix (namespace prefix to list; default "live"), relay (https:// URL of
// the relay; default this page's host and port), hash (hex SHA-256 of the
// relay's certificate; by default, a page loaded over http:// pins the
// certificate the relay reports at /fingerprint), token (a JWT the relay
// checks, sent in CLIENT_SETUP as an AUTHORIZATION TOKEN), catalog=msf
// (read the MSF catalog first, before moq-rs's).

import { Session } from "./moq.js";
import { Player } from "./player.js";

const params = new URLSearchParams(location.search);
const name = params.get("name") || "";
const prefix = params.get("prefix") || "live";
const relayURL = params.get("relay") || `https://${location.host}/`;
const $ = (id) => document.getElementById(id);

// stats is what the overlay shows; tests read it as window.watchStats.
const stats = {
  t0: performance.now(), state: "starting", connects: 0, broadcasts: [],
  setup: null, firstFrame: null, latency: null, resolution: "", bitrate: 0,
  framesDecoded: 0, framesDrawn: 0, framesDropped: 0, videoChunks: 0, groupsSkipped: 0, groupsCut: 0, bytes: 0, delay: 0,
  audioFrames: 0, audioLate: 0, audioState: "", codec: "", audioCodec: "", catalog: "",
};
window.watchStats = stats;

const logLines = [];
function log(msg) {
  const line = `${(performance.now() / 1000).toFixed(3)} ${msg}`;
  logLines.push(line);
  if (logLines.length > 200) logLines.shift();
  $("log").textContent = logLines.join("\n");
  console.log(line);
}

const split = (s) => s.split("/").filter((f) => f !== "");
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// ---- The broadcast list ---------------------------------------------------

const listed = new Map(); // "a/b" -> namespace
function showList() {
  stats.broadcasts = [...listed.keys()].sort();
  const ul = $("broadcasts");
  ul.textContent = "";
  for (const key of stats.broadcasts) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `?${new URLSearchParams({ ...Object.fromEntries(params), name: key })}`;
    a.textContent = key;
    if (key === name) a.className = "current";
    li.append(a);
    ul.append(li);
  }
  $("empty").hidden = stats.broadcasts.length > 0;
}

// ---- Connecting -----------------------------------------------------------

async function pin() {
  if (params.has("hash")) return params.get("hash");
  if (location.protocol !== "http:") return ""; // https: the certificate is trusted already
  const r = await fetch("/fingerprint", { cache: "no-store" });
  if (!r.ok) throw new Error(`/fingerprint: ${r.status}`);
  return (await r.text()).trim();
}

async function session(url, goaway) {
  const hash = await pin();
  return Session.connect(url, {
    hash, log, token: params.get("token") || "",
    onGoAway: (uri) => goaway(uri),
    onNamespace: (ns, active) => {
      const key = ns.join("/");
      if (active) listed.set(key, ns); else listed.delete(key);
      if (active) for (const w of announceWaiters) if (w.key === key) { announceWaiters.delete(w); w.res(true); }
      log(`${active ? "announced" : "withdrawn"}: ${key}`);
      showList();
    },
  });
}

// announced resolves when the namespace key is announced, or after ms.
const announceWaiters = new Set();
function announced(key, ms) {
  return new Promise((res) => {
    const w = { key, res };
    announceWaiters.add(w);
    setTimeout(() => { announceWaiters.delete(w); res(false); }, ms);
  });
}

// play plays the broadcast on session s until the session ends: when the
// broadcast is not there yet, or ends, it waits for it to be announced
// again (or tries again every few seconds: its name may be outside the
// listed prefix).
async function play(s, stop) {
  for (;;) {
    const player = new Player({ session: s, namespace: split(name), canvas: $("video"), log, stats, preferMSF: params.get("catalog") === "msf" });
    stats.state = "playing";
    try {
      const why = await Promise.race([player.start().then(() => player.ended), stop]);
      log(`stopped: ${why}`);
    } catch (err) {
      log(`${name}: ${err.message || err}`);
    } finally {
      player.close();
    }
    if (s.error || s.goneAway) return;
    stats.state = "waiting";
    await Promise.race([announced(name, 3000), stop]);
    if (s.error || s.goneAway) return;
  }
}

async function run() {
  if (!window.isSecureContext || typeof WebTransport === "undefined") {
    stats.state = "unsupported";
    log("WebTransport is not available here: open the page as http://localhost:PORT/ or over https://, in a browser with WebTransport and WebCodecs (Chromium, Chrome, Edge; Firefox for WebTransport)");
    return;
  }
  let url = relayURL;
  let backoff = 250;
  for (;;) {
    let s;
    let goaway;
    const away = new Promise((res) => { goaway = res; });
    try {
      stats.state = "connecting";
      log(`connecting to ${url}`);
      s = await session(url, goaway);
      stats.connects++;
      stats.state = "connected";
      log("connected (MoQT draft-14 over WebTransport)");
      const since = performance.now();
      s.subscribeNamespace(split(prefix)).catch((err) => log(`listing ${prefix}/: ${err.message}`));
      // stop settles when the session ends or the relay asks us to leave.
      const stop = Promise.race([s.closed.then((e) => `session ended: ${e.message || e}`), away.then((u) => `GOAWAY ${u}`)]);
      if (name) await play(s, stop);
      else {
        stats.state = "listing";
        await stop;
      }
      log(`session over: ${await stop}`);
      // A session that lasted is a fresh start; a short one (a relay
      // that is draining, say) keeps backing off.
      if (performance.now() - since > 3000) backoff = 250;
    } catch (err) {
      log(`${err.message || err}`);
    }
    const uri = await Promise.race([away, Promise.resolve("")]);
    if (uri) url = uri;
    if (s) s.close(0, "reconnecting");
    listed.clear();
    showList();
    stats.state = "reconnecting";
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 4000);
  }
}

// ---- The overlay ----------------------------------------------------------

function overlay() {
  const kbps = (stats.bitrate / 1000).toFixed(0);
  $("stats").textContent = [
    `${stats.state}${name ? " " + name : ""}`,
    stats.resolution ? `${stats.resolution} ${stats.codec}` : stats.codec,
    stats.audioCodec ? `audio ${stats.audioCodec} (${stats.audioState})` : "",
    `latency ${stats.latency ?? "-"} ms behind live`,
    `bitrate ${kbps} kb/s`,
    `frames ${stats.framesDrawn} drawn, ${stats.framesDropped} dropped`,
    `groups skipped ${stats.groupsSkipped}, cut short ${stats.groupsCut}`,
    stats.firstFrame !== null ? `first frame ${stats.firstFrame} ms` : "",
  ].filter(Boolean).join("\n");
}

$("prefix").textContent = prefix + "/";
$("title").textContent = name || "moq-go watch";
document.title = name ? `${name}: moq-go watch` : "moq-go watch";
$("player").hidden = !name;
$("unmute").addEventListener("click", () => {
  for (const c of window.audioContexts || []) c.resume();
});
setInterval(overlay, 250);
overlay();
showList();
run();
