// The official Phoenix JavaScript client against our endpoint.
// Usage: node phoenix_client.mjs ws://127.0.0.1:PORT/socket TOKEN
// Joins a sensor channel as Sensocto's connectors do, pushes one measurement, a batch,
// a binary batch block (built here by hand from the layout documented in
// sensocto_lab/protocol/binary.py), one bad measurement, a marker and a bad marker, and prints one JSON object
// with what came back. Exits 1 if anything does not arrive within 10 s.
import { Socket } from "phoenix";
import WebSocket from "ws";

const [url, token] = process.argv.slice(2);
const T0 = 1767225600000; // 2026-01-01 in ms
const out = {};
const fail = (why) => {
  console.log(JSON.stringify({ ...out, failed: why }));
  process.exit(1);
};
setTimeout(() => fail("timeout"), 10000);

function binaryBlock(attributeId, values, t0Ms, dtMs) {
  const id = new TextEncoder().encode(attributeId);
  const buf = new ArrayBuffer(16 + id.length + 16 + 4 * values.length);
  const view = new DataView(buf);
  new Uint8Array(buf, 0, 4).set(new TextEncoder().encode("SLB1"));
  view.setUint8(4, 1); // version
  view.setUint8(5, 0); // flags: t0 + dt
  view.setUint16(6, id.length, true);
  view.setUint32(8, values.length, true);
  view.setUint16(12, 1, true); // width
  new Uint8Array(buf, 16, id.length).set(id);
  let off = 16 + id.length;
  view.setBigInt64(off, BigInt(t0Ms) * 1000000n, true);
  view.setFloat64(off + 8, dtMs * 1e6, true);
  off += 16;
  values.forEach((v, i) => view.setFloat32(off + 4 * i, v, true));
  return buf;
}

function push(channel, event, payload) {
  return new Promise((resolve) => {
    channel
      .push(event, payload, 5000)
      .receive("ok", (resp) => resolve({ status: "ok", response: resp }))
      .receive("error", (resp) => resolve({ status: "error", response: resp }))
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
}

const socket = new Socket(url, { transport: WebSocket, params: { token } });
socket.onError(() => fail("socket error"));
socket.connect();

const channel = socket.channel("sensocto:sensor:js1", {
  connector_id: "node-1",
  connector_name: "phoenix.js",
  sensor_id: "js1",
  sensor_name: "JS strap",
  sensor_type: "polar",
  attributes: [
    { attribute_id: "hr", attribute_type: "hr" },
    { attribute_id: "ecg", attribute_type: "ecg" },
  ],
  sampling_rate: 130,
  batch_size: 5,
  bearer_token: token,
});

const backpressure = new Promise((resolve) => channel.on("backpressure_config", resolve));

channel
  .join()
  .receive("ok", async (resp) => {
    out.join = { status: "ok", response: resp };
    out.backpressure = await backpressure;
    out.measurement = await push(channel, "measurement", { attribute_id: "hr", payload: 72, timestamp: T0 });
    out.batch = await push(
      channel,
      "measurements_batch",
      [73, 74, 75].map((v, i) => ({ attribute_id: "hr", payload: v, timestamp: T0 + 1000 * (i + 1) })),
    );
    out.binary = await push(channel, "measurements_binary", binaryBlock("ecg", [0.5, -0.25, 1.0], T0, 1000 / 130));
    out.bad = await push(channel, "measurement", { attribute_id: "hr", payload: "high", timestamp: T0 });
    out.marker = await push(channel, "marker", { label: "stimulus", timestamp: T0 + 500, value: { n: 1 } });
    out.badMarker = await push(channel, "marker", { label: "", timestamp: T0 });
    console.log(JSON.stringify(out));
    socket.disconnect(() => process.exit(0));
  })
  .receive("error", (resp) => fail({ join: resp }))
  .receive("timeout", () => fail("join timeout"));
