// Connects through palisade's PostgreSQL proxy with node-postgres in every routing form and prints one JSON line
// per form. Run by io.palisade.proxy.TestPostgresProxyIntegration; exits non-zero if any form fails.
// Env: PROXY_PORT, PROXY_CA (CA file), PROXY_DOMAIN, DB_ID, PGUSER, PGPASSWORD, PGDATABASE.
import fs from 'node:fs';
import pg from 'pg';

const port = Number(process.env.PROXY_PORT);
const ca = fs.readFileSync(process.env.PROXY_CA, 'utf8');
const id = process.env.DB_ID;
const host = `${id}.${process.env.PROXY_DOMAIN}`;
const base = {
  host: '127.0.0.1',
  port,
  user: process.env.PGUSER,
  password: process.env.PGPASSWORD,
  database: process.env.PGDATABASE,
  connectionTimeoutMillis: 15000,
};

const forms = {
  // SNI by hostname (no wildcard DNS here: dial 127.0.0.1, send the hostname as SNI and verify against it)
  sni: { ...base, ssl: { ca, servername: host } },
  // no SNI: the endpoint travels in the options startup parameter; the certificate is verified for 127.0.0.1
  options: { ...base, options: `endpoint=${id}`, ssl: { ca } },
  // PostgreSQL 17 style direct TLS (ClientHello first, ALPN "postgresql")
  direct: { ...base, ssl: { ca, servername: host }, sslnegotiation: 'direct' },
};

let failed = false;
for (const [form, config] of Object.entries(forms)) {
  const client = new pg.Client(config);
  try {
    await client.connect();
    const sql = 'SELECT current_database() AS db, current_user AS usr, $1::int + 1 AS answer';
    const result = await client.query(sql, [41]);
    console.log(JSON.stringify({ form, ok: true, ...result.rows[0] }));
  } catch (error) {
    failed = true;
    console.log(JSON.stringify({ form, ok: false, error: String(error.message), code: error.code }));
  } finally {
    await client.end().catch(() => {});
  }
}
process.exit(failed ? 1 : 0);
