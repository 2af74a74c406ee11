// An application's Neon `Pool` session across a move's cutover: the unmodified @neondatabase/serverless driver over
// palisade's /v2 WebSocket, one `pool.query` every INTERVAL_MS until stdin closes. Run by the Java test
// io.palisade.server.TestMoveClientCutover with BROKER_PORT and DATABASE_URL. Prints one JSON line per event, with
// the epoch milliseconds it happened at:
//   {"t":…,"ok":true,"port":…}                     a query answered (port: the PostgreSQL server that answered it)
//   {"t":…,"ok":false,"code":…,"message":…}        a query failed (the application retries with the next tick)
//   {"t":…,"idle_error":true,"code":…,"message":…} a pooled connection ended while idle (the pool drops it)
// Only neonConfig.wsProxy, useSecureWebSocket and webSocketConstructor are set, and the pool's 'error' listener that
// any application using pg's Pool must have.
import ws from 'ws';
import { neonConfig, Pool } from '@neondatabase/serverless';

const port = process.env.BROKER_PORT;
const url = process.env.DATABASE_URL;
const interval = Number(process.env.INTERVAL_MS ?? 100);
if (!port || !url) {
  throw new Error('set BROKER_PORT and DATABASE_URL');
}
neonConfig.wsProxy = (host, p) => `127.0.0.1:${port}/v2?address=${host}:${p}`;
neonConfig.useSecureWebSocket = false;
neonConfig.webSocketConstructor = ws;

const print = (event) => process.stdout.write(JSON.stringify({ t: Date.now(), ...event }) + '\n');
const pool = new Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 60000 });
pool.on('error', (error) => print({ idle_error: true, code: error.code ?? null, message: String(error.message) }));

let stopping = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  stopping = true;
});
process.stdin.on('close', () => {
  stopping = true;
});

while (!stopping) {
  const started = Date.now();
  try {
    const { rows } = await pool.query('SELECT inet_server_port() AS port');
    print({ ok: true, port: rows[0].port });
  } catch (error) {
    print({ ok: false, code: error.code ?? null, message: String(error.message) });
  }
  const rest = interval - (Date.now() - started);
  if (rest > 0) {
    await new Promise((resolve) => setTimeout(resolve, rest));
  }
}
await pool.end();
