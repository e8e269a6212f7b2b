// Just enough ISO BMFF (fragmented MP4, CMAF) to feed WebCodecs: the init
// segment's tracks (ID, kind, timescale, size, codec configuration) and the
// samples of a moof+mdat fragment, as moq-pub publishes them.

const td = new TextDecoder();

function u32(b, i) { return ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3]; }
function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
function u64(b, i) { return u32(b, i) * 2 ** 32 + u32(b, i + 4); }
function i32(b, i) { return u32(b, i) | 0; }

// boxes lists the boxes in b[start:end): {type, start (of the payload), end}.
export function boxes(b, start = 0, end = b.length) {
  const out = [];
  let i = start;
  while (i + 8 <= end) {
    let size = u32(b, i), hdr = 8;
    const type = td.decode(b.subarray(i + 4, i + 8));
    if (size === 1) { size = u64(b, i + 8); hdr = 16; } else if (size === 0) size = end - i;
    if (size < hdr || i + size > end) throw new Error(`box ${type} at ${i} of ${size} bytes overruns its parent`);
    out.push({ type, start: i + hdr, end: i + size, boxStart: i });
    i += size;
  }
  return out;
}

function child(b, box, type) {
  return boxes(b, box.start, box.end).find((x) => x.type === type);
}

function path(b, box, ...types) {
  for (const t of types) {
    if (!box) return undefined;
    box = child(b, box, t);
  }
  return box;
}

// parseInit returns the tracks of an init segment (ftyp, moov).
export function parseInit(b) {
  const moov = boxes(b).find((x) => x.type === "moov");
  if (!moov) throw new Error("the init segment has no moov");
  const trex = new Map();
  const mvex = child(b, moov, "mvex");
  if (mvex) {
    for (const x of boxes(b, mvex.start, mvex.end)) {
      if (x.type !== "trex") continue;
      const p = x.start + 4;
      trex.set(u32(b, p), { duration: u32(b, p + 8), size: u32(b, p + 12), flags: u32(b, p + 16) });
    }
  }
  const tracks = [];
  for (const trak of boxes(b, moov.start, moov.end).filter((x) => x.type === "trak")) {
    const tkhd = child(b, trak, "tkhd");
    const id = u32(b, tkhd.start + (b[tkhd.start] === 1 ? 20 : 12));
    const mdhd = path(b, trak, "mdia", "mdhd");
    const timescale = u32(b, mdhd.start + (b[mdhd.start] === 1 ? 20 : 12));
    const hdlr = path(b, trak, "mdia", "hdlr");
    const handler = td.decode(b.subarray(hdlr.start + 8, hdlr.start + 12));
    const stsd = path(b, trak, "mdia", "minf", "stbl", "stsd");
    const entries = boxes(b, stsd.start + 8, stsd.end);
    if (!entries.length) continue;
    const e = entries[0];
    const t = { id, timescale, handler, format: e.type, trex: trex.get(id) || { duration: 0, size: 0, flags: 0 } };
    if (handler === "vide") {
      t.kind = "video";
      t.width = u16(b, e.start + 24);
      t.height = u16(b, e.start + 26);
      for (const c of boxes(b, e.start + 78, e.end)) {
        if (["avcC", "hvcC", "av1C", "vpcC"].includes(c.type)) {
          t.configBox = c.type;
          t.description = b.slice(c.start, c.end);
        }
      }
    } else if (handler === "soun") {
      t.kind = "audio";
      t.channels = u16(b, e.start + 16);
      t.sampleRate = u32(b, e.start + 24) >>> 16;
      for (const c of boxes(b, e.start + 28, e.end)) {
        if (c.type === "esds") t.description = esdsConfig(b.subarray(c.start + 4, c.end));
        if (c.type === "dOps") t.dOps = b.slice(c.start, c.end);
      }
    } else {
      t.kind = handler;
    }
    tracks.push(t);
  }
  return tracks;
}

// esdsConfig returns the DecoderSpecificInfo (AAC AudioSpecificConfig) of
// an ES_Descriptor.
function esdsConfig(b) {
  let i = 0;
  const desc = () => {
    const tag = b[i++];
    let len = 0;
    for (let k = 0; k < 4; k++) {
      const c = b[i++];
      len = (len << 7) | (c & 0x7f);
      if (!(c & 0x80)) break;
    }
    return { tag, len, start: i };
  };
  let d = desc();
  if (d.tag !== 0x03) return undefined;
  i += 2;
  const flags = b[i++];
  if (flags & 0x80) i += 2;
  if (flags & 0x40) i += 1 + b[i];
  if (flags & 0x20) i += 2;
  d = desc();
  if (d.tag !== 0x04) return undefined;
  i += 13;
  d = desc();
  if (d.tag !== 0x05) return undefined;
  return b.slice(d.start, d.start + d.len);
}

// parseFragment returns the samples of a moof+mdat fragment: for each,
// {track, time (in the track's timescale, composition), duration, key,
// data}. tracks maps track IDs to parseInit's tracks (for trex defaults).
export function parseFragment(b, tracks) {
  const top = boxes(b);
  const moof = top.find((x) => x.type === "moof");
  if (!moof) throw new Error("fragment without moof");
  const out = [];
  for (const traf of boxes(b, moof.start, moof.end).filter((x) => x.type === "traf")) {
    const tfhd = child(b, traf, "tfhd");
    const tf = u32(b, tfhd.start) & 0xffffff;
    let p = tfhd.start + 4;
    const trackID = u32(b, p); p += 4;
    const t = tracks.get(trackID);
    const def = { ...(t ? t.trex : { duration: 0, size: 0, flags: 0 }) };
    let base = moof.boxStart;
    if (tf & 0x01) { base = u64(b, p); p += 8; }
    if (tf & 0x02) p += 4;
    if (tf & 0x08) { def.duration = u32(b, p); p += 4; }
    if (tf & 0x10) { def.size = u32(b, p); p += 4; }
    if (tf & 0x20) { def.flags = u32(b, p); p += 4; }
    const tfdt = child(b, traf, "tfdt");
    let dt = 0;
    if (tfdt) dt = b[tfdt.start] === 1 ? u64(b, tfdt.start + 4) : u32(b, tfdt.start + 4);
    let dataPos = base;
    for (const trun of boxes(b, traf.start, traf.end).filter((x) => x.type === "trun")) {
      const version = b[trun.start];
      const f = u32(b, trun.start) & 0xffffff;
      let q = trun.start + 4;
      const count = u32(b, q); q += 4;
      if (f & 0x01) { dataPos = base + i32(b, q); q += 4; }
      let firstFlags;
      if (f & 0x04) { firstFlags = u32(b, q); q += 4; }
      for (let k = 0; k < count; k++) {
        let duration = def.duration, size = def.size, flags = def.flags, cto = 0;
        if (f & 0x100) { duration = u32(b, q); q += 4; }
        if (f & 0x200) { size = u32(b, q); q += 4; }
        if (f & 0x400) { flags = u32(b, q); q += 4; }
        if (f & 0x800) { cto = version === 0 ? u32(b, q) : i32(b, q); q += 4; }
        if (k === 0 && firstFlags !== undefined) flags = firstFlags;
        if (dataPos + size > b.length) throw new Error("sample data beyond the fragment");
        out.push({
          track: trackID, time: dt + cto, decodeTime: dt, duration,
          key: !(flags & 0x10000), data: b.subarray(dataPos, dataPos + size),
        });
        dataPos += size;
        dt += duration;
      }
    }
  }
  return out;
}

// codecFor derives a WebCodecs codec string from the init segment when the
// catalog names none.
export function codecFor(t) {
  const d = t.description;
  switch (t.configBox) {
    case "avcC":
      return `${t.format}.${[d[1], d[2], d[3]].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
    default:
      break;
  }
  if (t.format === "mp4a") return "mp4a.40.2";
  if (t.format === "Opus") return "opus";
  return t.format;
}
