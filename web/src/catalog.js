// Catalogs: moq-rs's (".catalog": draft-ietf-moq-catalogformat-01 as
// moq-catalog 0.2 writes it, fields under selectionParams, the init segment
// on its own track) and MSF's (draft-ietf-moq-msf with CMSF packaging,
// "catalog": fields on the track, each track's CMAF init segment in the
// catalog as base64: inline initData in draft-00, an initRef naming an
// entry of the root initDataList in draft-01). parseCatalog turns either
// into one list of tracks:
//   {name, kind ("video" | "audio" | undefined), codec, width, height,
//    samplerate, channels, bitrate, initTrack, initData}

export function parseCatalog(json) {
  if (!json || typeof json !== "object" || !Array.isArray(json.tracks)) {
    throw new Error("catalog: no tracks array");
  }
  const common = json.commonTrackFields || {};
  const initList = new Map((Array.isArray(json.initDataList) ? json.initDataList : []).map((d) => [String(d.id), d.data]));
  const msf = !("streamingFormat" in json) && json.tracks.some((t) => !("selectionParams" in t));
  const tracks = json.tracks.map((t) => {
    const p = t.selectionParams || t;
    const channels = Number.parseInt(p.channelConfig, 10);
    const track = {
      name: String(t.name),
      codec: p.codec || undefined,
      width: p.width, height: p.height,
      samplerate: p.samplerate,
      channels: Number.isFinite(channels) ? channels : undefined,
      bitrate: p.bitrate,
      packaging: t.packaging || common.packaging,
      initTrack: t.initTrack || common.initTrack,
      initData: t.initData || common.initData || (t.initRef !== undefined ? initList.get(String(t.initRef)) : undefined),
    };
    if (t.initRef !== undefined && !track.initData) throw new Error(`catalog: track ${track.name}: initRef ${t.initRef} names no initDataList entry`);
    const role = t.role || t.kind;
    if (role === "video" || role === "audio") track.kind = role;
    else if (p.width || p.height) track.kind = "video";
    else if (p.samplerate || p.channelConfig) track.kind = "audio";
    return track;
  }).filter((t) => !t.packaging || t.packaging === "cmaf");
  return { format: msf ? "MSF" : "moq-rs", tracks };
}
